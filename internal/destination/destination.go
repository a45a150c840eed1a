// Package destination is the "send" stage of a delivery (docs/delivery-pipeline.md):
// one small interface, Sender, that makes one attempt at one kind of destination, and a
// Registry that picks the kind for an endpoint URL by its scheme, both when the endpoint
// is created or changed (CheckURL) and when an attempt is sent (Send).
//
// HTTP (internal/sender) is the first kind; the composition root (internal/app)
// registers it for https and http. Another kind (a message broker, say) is a package of
// its own that provides a Kind: the schemes it serves, how it checks a URL without
// touching the network, and its Sender. Nothing else in the delivery path changes: the
// dispatcher sends through the Registry, and the endpoint API checks URLs through it.
//
// Request and Outcome are internal/sender's types under this package's names. HTTP came
// first, and its request (URL, headers, body) and outcome (a Class, timing, an error
// text a person can act on, and the reply when there is one) already say what any
// destination needs; a destination without a status code leaves Outcome.Status 0.
package destination

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/consign-dev/consign/internal/sender"
)

// Request is one attempt to make: target URL, headers (signed), body.
type Request = sender.Request

// ClientTLS is an endpoint's client certificate and CAs, for the connection (mutual
// TLS belongs to the send stage, not to authenticate): Request.TLS.
type ClientTLS = sender.ClientTLS

// NewClientTLS parses an endpoint's client certificate, key and CA bundle (PEM).
func NewClientTLS(certPEM, keyPEM, caPEM string) (*ClientTLS, error) {
	return sender.NewClientTLS(certPEM, keyPEM, caPEM)
}

// Outcome is what became of one attempt.
type Outcome = sender.Outcome

// Class is the verdict on an attempt.
type Class = sender.Class

// The verdicts a Sender gives (see sender.Class): what the dispatcher does next depends
// on them alone, whatever the kind of destination.
const (
	Failure   = sender.Failure   // retried on the endpoint's schedule
	Success   = sender.Success   // the delivery succeeded
	Gone      = sender.Gone      // the destination asks to stop: the endpoint is deactivated
	Throttled = sender.Throttled // the whole endpoint waits until Outcome.RetryAt
	Blocked   = sender.Blocked   // refused by policy before any connection; retried like Failure
)

// Sender makes one attempt at a destination and says what became of it. A failed
// attempt is an Outcome, not an error. Send must be safe for concurrent use and must
// return when ctx ends.
type Sender interface {
	Send(ctx context.Context, r Request) Outcome
}

// Kind is one kind of destination.
type Kind struct {
	// Name names the kind in messages, e.g. "HTTP".
	Name string
	// Schemes are the URL schemes the kind serves, in lower case.
	Schemes []string
	// Check says what is wrong with an endpoint URL of this kind, without a network
	// round trip; insecure relaxes the rules for development (--insecure-targets). Its
	// error text is shown to the user as is.
	Check func(raw string, insecure bool) error
	// Sender sends the kind's attempts.
	Sender Sender
	// Pipelined says that the kind's attempts to one broker share a connection and are
	// on the wire together, each awaiting its own acknowledgement: an attempt in flight
	// costs a pending ack, not a connection, and the more there are, the more messages
	// each write and each of the broker's reads carries. The dispatcher keeps such an
	// endpoint's whole burst limit in flight instead of narrowing it to its round trips.
	Pipelined bool
}

// Registry chooses a Kind by the scheme of a URL. The first kind given to NewRegistry is
// the default: a URL whose scheme no kind serves (or that has none) goes to it, and it
// refuses that URL in its own words, at creation (Check) and at sending (Send), as a
// registry with only that kind would.
type Registry struct {
	kinds    []Kind
	byScheme map[string]*Kind
}

// NewRegistry returns a registry of kinds; the first is the default. It refuses a kind
// without a scheme, a check or a sender, and a scheme served twice.
func NewRegistry(kinds ...Kind) (*Registry, error) {
	if len(kinds) == 0 {
		return nil, errors.New("destination: no kind of destination registered")
	}
	r := &Registry{kinds: kinds, byScheme: map[string]*Kind{}}
	for i := range r.kinds {
		k := &r.kinds[i]
		if len(k.Schemes) == 0 || k.Check == nil || k.Sender == nil {
			return nil, fmt.Errorf("destination: kind %q needs schemes, a check and a sender", k.Name)
		}
		for _, s := range k.Schemes {
			if prev, ok := r.byScheme[s]; ok {
				return nil, fmt.Errorf("destination: scheme %q is served by both %s and %s", s, prev.Name, k.Name)
			}
			if s != strings.ToLower(s) {
				return nil, fmt.Errorf("destination: scheme %q of %s must be lower case", s, k.Name)
			}
			r.byScheme[s] = k
		}
	}
	return r, nil
}

// kind returns the kind that serves rawURL's scheme, or the default.
func (r *Registry) kind(rawURL string) *Kind {
	if len(r.kinds) == 1 {
		return &r.kinds[0]
	}
	if i := strings.IndexByte(rawURL, ':'); i > 0 {
		s := rawURL[:i]
		if k, ok := r.byScheme[s]; ok {
			return k
		}
		if k, ok := r.byScheme[strings.ToLower(s)]; ok {
			return k
		}
	}
	return &r.kinds[0]
}

// CheckURL says what is wrong with an endpoint URL (nil if nothing), by the rules of the
// kind that serves its scheme. It has the signature manage.Config.ValidateURL asks for.
func (r *Registry) CheckURL(raw string, insecure bool) error {
	return r.kind(raw).Check(raw, insecure)
}

// Pipelined says whether the kind that serves rawURL's scheme is Pipelined.
func (r *Registry) Pipelined(rawURL string) bool {
	return r.kind(rawURL).Pipelined
}

// Send sends r through the kind that serves its URL's scheme.
func (r *Registry) Send(ctx context.Context, req Request) Outcome {
	return r.kind(req.URL).Sender.Send(ctx, req)
}
