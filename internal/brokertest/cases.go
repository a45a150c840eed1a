package brokertest

// The table runners the broker destination kinds share: what a user notices of an
// attempt is the same whatever the broker (a class, an error text, an ack), so each
// kind's tests give their rows and these say what must hold of them.

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/destination"
)

// Header is the request of a typical attempt: the signature headers, a content type and
// an endpoint header of its own.
func Header() http.Header {
	return http.Header{"Webhook-Id": {"evt_1"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,abc"},
		"Content-Type": {"application/json"}, "X-Partner": {"acme"}}
}

// MessageHeader is Header as a broker message carries it: lower-case names.
func MessageHeader() map[string]string {
	return map[string]string{"webhook-id": "evt_1", "webhook-timestamp": "1700000000", "webhook-signature": "v1,abc",
		"content-type": "application/json", "x-partner": "acme"}
}

// SendMany makes n attempts at url at once through s, each with its own event id
// (evt_0…), and requires each to succeed; it returns their acks.
func SendMany(t *testing.T, s destination.Sender, url string, n int) []map[string]string {
	t.Helper()
	acks := make([]map[string]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out := s.Send(t.Context(), destination.Request{URL: url,
				Header: http.Header{"Webhook-Id": {"evt_" + strconv.Itoa(i)}}, Body: []byte("{}")})
			if out.Class != destination.Success {
				t.Errorf("attempt %d: %v %s", i, out.Class, out.Err)
			}
			acks[i] = out.Ack
		})
	}
	wg.Wait()
	return acks
}

// Unique requires the value of field to differ between acks (a sequence, a delivery
// tag): no two attempts got the same acknowledgement.
func Unique(t *testing.T, acks []map[string]string, field string) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range acks {
		require.False(t, seen[a[field]], "%s %s acknowledged twice", field, a[field])
		seen[a[field]] = true
	}
}

// FailCase is one attempt a broker does not take.
type FailCase struct {
	Name     string
	URL      string
	Insecure bool                   // the sender's InsecureTargets
	TLS      *destination.ClientTLS // the endpoint's TLS settings, if any
	Class    destination.Class      // Failure (retried) or Blocked
	Err      string                 // what the attempt's error must say
}

// SendFails runs each case in parallel with a sender from newSender (closed by its
// caller's cleanup) and requires its class, its error text and no ack. then, when not
// nil, runs after each case with the same sender: a broker that refused one attempt
// still takes the next.
func SendFails(t *testing.T, newSender func(t *testing.T, insecure bool) destination.Sender, cases []FailCase,
	then func(t *testing.T, s destination.Sender)) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			s := newSender(t, tt.Insecure)
			out := s.Send(t.Context(), destination.Request{URL: tt.URL, TLS: tt.TLS,
				Header: http.Header{"Webhook-Id": {"evt_1"}}, Body: []byte("{}")})
			require.Equal(t, tt.Class, out.Class, out.Err)
			require.Contains(t, out.Err, tt.Err)
			require.Nil(t, out.Ack)
			if then != nil && tt.Insecure {
				then(t, s)
			}
		})
	}
}

// URLCase is one endpoint URL and what the check must say of it.
type URLCase struct {
	URL      string
	Insecure bool   // --insecure-targets
	Want     string // "" accepted, else a part of the error
}

// CheckURLs runs each case through check (a kind's CheckURL).
func CheckURLs(t *testing.T, check func(raw string, insecure bool) error, cases []URLCase) {
	t.Helper()
	for _, tt := range cases {
		err := check(tt.URL, tt.Insecure)
		if tt.Want == "" {
			require.NoError(t, err, tt.URL)
			continue
		}
		require.ErrorContains(t, err, tt.Want, tt.URL)
		require.NotContains(t, err.Error(), "plaintext: url", "no wrapping word before the message: %s", err)
	}
}

// URLRules requires of check (a kind's CheckURL) what holds for every kind, whatever
// URL a user sends (for fuzz targets): a URL accepted without --insecure-targets is
// accepted with it, and never has a plaintext scheme. It reports whether check accepts
// raw with --insecure-targets.
func URLRules(t *testing.T, check func(raw string, insecure bool) error, raw string) bool {
	t.Helper()
	if check(raw, false) == nil {
		require.NoError(t, check(raw, true), "what passes without --insecure-targets passes with it: %s", raw)
		scheme, _, _ := strings.Cut(raw, ":")
		require.NotContains(t, []string{"nats", "amqp", "redis", "kafka"}, strings.ToLower(scheme), "plaintext passed without --insecure-targets: %s", raw)
	}
	return check(raw, true) == nil
}
