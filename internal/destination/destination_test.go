package destination_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/sender"
)

// queueKind is a second kind of destination, as a broker would be: it takes attempts
// to queue:// URLs into memory.
type queueKind struct {
	mu   sync.Mutex
	sent []string
}

func (q *queueKind) Send(_ context.Context, r destination.Request) destination.Outcome {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sent = append(q.sent, r.URL)
	return destination.Outcome{Class: destination.Success}
}

func (q *queueKind) kind() destination.Kind {
	return destination.Kind{Name: "queue", Schemes: []string{"queue"}, Sender: q,
		Check: func(raw string, _ bool) error {
			if !strings.HasPrefix(raw, "queue://") {
				return errors.New("url must look like queue://name")
			}
			return nil
		}}
}

func httpKind(s *sender.Sender) destination.Kind {
	return destination.Kind{Name: "HTTP", Schemes: []string{"https", "http"}, Check: sender.ValidateTargetURL, Sender: s}
}

// TestRegistrySendsByScheme: an attempt goes to the kind that serves its URL's scheme;
// a scheme nobody serves goes to the default kind (HTTP), which refuses it as it always
// has, without a request.
func TestRegistrySendsByScheme(t *testing.T) {
	t.Parallel()
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	snd := sender.New(sender.Config{InsecureTargets: true})
	t.Cleanup(snd.Close)
	q := &queueKind{}
	reg, err := destination.NewRegistry(httpKind(snd), q.kind())
	require.NoError(t, err)

	tests := []struct {
		name      string
		url       string
		class     destination.Class
		err       string
		hits      int
		queued    []string
		upperCase bool
	}{
		{name: "HTTP", url: srv.URL + "/hook", class: destination.Success, hits: 1},
		{name: "Queue", url: "queue://orders", class: destination.Success, queued: []string{"queue://orders"}},
		{name: "SchemeInUpperCase", url: "QUEUE://orders", class: destination.Success, queued: []string{"QUEUE://orders"}},
		{name: "UnknownScheme", url: "ftp://example.com/", class: destination.Failure, err: "url must use http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			hits = 0
			mu.Unlock()
			q.mu.Lock()
			q.sent = nil
			q.mu.Unlock()
			out := reg.Send(t.Context(), destination.Request{URL: tt.url, Header: http.Header{}, Body: []byte("{}")})
			require.Equal(t, tt.class, out.Class, out.Err)
			require.Contains(t, out.Err, tt.err)
			mu.Lock()
			require.Equal(t, tt.hits, hits, "requests the HTTP receiver got")
			mu.Unlock()
			q.mu.Lock()
			require.Equal(t, tt.queued, q.sent, "messages the queue got")
			q.mu.Unlock()
		})
	}
}

// TestRegistryCheckURL: an endpoint URL is checked by the rules of its scheme's kind,
// and a URL no kind serves gets the default kind's words, the same as HTTP alone gives.
func TestRegistryCheckURL(t *testing.T) {
	t.Parallel()
	q := &queueKind{}
	reg, err := destination.NewRegistry(httpKind(sender.New(sender.Config{})), q.kind())
	require.NoError(t, err)
	tests := []struct {
		url      string
		insecure bool
		want     string // "" accepted
	}{
		{"https://example.com/hook", false, ""},
		{"http://example.com/hook", false, "url must use https"},
		{"http://example.com/hook", true, ""},
		{"https://127.0.0.1/hook", false, "127.0.0.1 is a loopback address; targets must be public"},
		{"queue://orders", false, ""},
		{"queue:orders", false, "url must look like queue://name"},
		{"ftp://example.com/", false, "url must use https, not ftp"},
		{"ftp://example.com/", true, "url must use http or https, not ftp"},
		{"", false, "url is required"},
		{"/relative", false, "url must be absolute, like https://example.com/webhook"},
	}
	for _, tt := range tests {
		err := reg.CheckURL(tt.url, tt.insecure)
		if tt.want == "" {
			require.NoError(t, err, tt.url)
			continue
		}
		require.EqualError(t, err, tt.want, tt.url)
	}
}

// TestNewRegistryRefuses: a registry that could not choose is refused when it is built.
func TestNewRegistryRefuses(t *testing.T) {
	t.Parallel()
	q := &queueKind{}
	h := httpKind(sender.New(sender.Config{}))
	tests := []struct {
		name  string
		kinds []destination.Kind
		want  string
	}{
		{"None", nil, "no kind of destination registered"},
		{"SchemeTwice", []destination.Kind{h, {Name: "other", Schemes: []string{"http"}, Check: h.Check, Sender: q}}, `scheme "http" is served by both HTTP and other`},
		{"NoSender", []destination.Kind{{Name: "x", Schemes: []string{"x"}, Check: h.Check}}, `kind "x" needs schemes, a check and a sender`},
		{"NoSchemes", []destination.Kind{{Name: "x", Check: h.Check, Sender: q}}, `kind "x" needs schemes, a check and a sender`},
		{"UpperCase", []destination.Kind{{Name: "x", Schemes: []string{"X"}, Check: h.Check, Sender: q}}, `scheme "X" of x must be lower case`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := destination.NewRegistry(tt.kinds...)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// FuzzCheckURL: whatever a user sends as an endpoint URL, the registry answers without
// panicking, and a URL outside the second kind's scheme is judged exactly as HTTP alone
// judges it.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://example.com/", "queue://x", "QUEUE:x", "ftp://a", "", ":", "http:", "//x", "a:b:c"} {
		f.Add(s, false)
	}
	q := &queueKind{}
	reg, err := destination.NewRegistry(httpKind(sender.New(sender.Config{})), q.kind())
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, raw string, insecure bool) {
		got := reg.CheckURL(raw, insecure)
		if i := strings.IndexByte(raw, ':'); i > 0 && strings.EqualFold(raw[:i], "queue") {
			return
		}
		want := sender.ValidateTargetURL(raw, insecure)
		require.Equal(t, want == nil, got == nil)
		if want != nil {
			require.Equal(t, want.Error(), got.Error())
		}
	})
}
