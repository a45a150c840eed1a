// Package sender makes the outbound HTTP request of one webhook delivery
// attempt and reports what happened. It knows nothing about storage,
// retries or scheduling: the caller passes a Request (URL, headers, signed
// body) and gets back an Outcome (class, timing, captured response and an
// error text a person can act on).
//
// Design:
//   - One Sender holds one pool of kept-alive HTTP/1.1 connections per
//     target (TLS 1.2 or later, no proxy) and is safe for concurrent use. An
//     attempt writes its request and reads the response on its own
//     goroutine (client.go); responses are parsed by net/http's
//     http.ReadResponse and TLS is crypto/tls. Redirects are never
//     followed; a 3xx is a failed attempt.
//   - Built with the tag consign_stdlib, the Sender sends through net/http's
//     Transport instead (client_stdlib.go), with the same guard, timeouts,
//     capture limits and error texts, and passes the same tests: the
//     standard path to compare the hand-made client with.
//   - Unless Config.InsecureTargets is set, only https is allowed and every
//     connection is checked by an SSRF guard in net.Dialer.Control, which
//     runs after DNS resolution and before connect(2). A name that resolves
//     (or re-resolves) to an internal address is refused without a packet
//     being sent to it. ValidateTargetURL applies the DNS-free part of the
//     same rules when an endpoint is created.
//   - Every read and write of an attempt ends at its deadline (one
//     SetDeadline per attempt, no timer of its own), and at once when the
//     caller's context is canceled.
//   - Response headers are capped at 64 KiB, bodies captured up to a limit.
//     A bounded amount of the rest is read and thrown away so the
//     connection can be reused.
//   - Send is the hot path. In the hand-made client the request is written from the caller's header
//     map and []byte through a pooled buffer in one write for small bodies;
//     read buffers are lent to a connection only while it is in use.
package sender
