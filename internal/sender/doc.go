// Package sender makes the outbound HTTP request of one webhook delivery
// attempt and reports what happened. It knows nothing about storage,
// retries or scheduling: the caller passes a Request (URL, headers, signed
// body) and gets back an Outcome (class, timing, captured response and an
// error text a person can act on).
//
// Design:
//   - One Sender holds one shared http.Transport (keep-alive, a large idle
//     pool per host, TLS 1.2 or later, no proxy, HTTP/1.1) and is safe for
//     concurrent use. Redirects are never followed; a 3xx is a failed attempt.
//   - Unless Config.InsecureTargets is set, only https is allowed and every
//     connection is checked by an SSRF guard in net.Dialer.Control, which
//     runs after DNS resolution and before connect(2). A name that resolves
//     (or re-resolves) to an internal address is refused without a packet
//     being sent to it. ValidateTargetURL applies the DNS-free part of the
//     same rules when an endpoint is created.
//   - Response bodies are captured up to a limit. A bounded amount of the
//     rest is read and thrown away so the connection can be reused.
//   - Send is the hot path. The request body is sent straight from the
//     caller's []byte, response buffers come from a per-Sender pool, and the
//     work for a successful attempt allocates little beyond what net/http
//     allocates.
package sender
