package dispatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/destination"
)

// oauthTokens holds the OAuth 2.0 access token of each oauth2 endpoint (client
// credentials, golang.org/x/oauth2/clientcredentials). A token is fetched when an
// attempt needs one and none is held, kept until shortly before it expires, and dropped
// when the endpoint answers 401 with it, so the next attempt fetches a new one. One
// fetch runs at a time per endpoint: attempts that need a token meanwhile wait for it
// rather than each asking the token endpoint. Token requests go through the
// dispatcher's Sender, so the target rules (SSRF guard, https) and its timeouts apply to
// the token URL as they do to the endpoint's.
type oauthTokens struct {
	hc *http.Client
	mu sync.Mutex
	m  map[string]*tokenSlot // by endpoint ID
}

// tokenSlot is one endpoint's token. settings identifies what it was fetched with, so
// that changed credentials fetch a new one.
type tokenSlot struct {
	settings [sha256.Size]byte
	fetch    chan struct{} // held while a fetch runs
	mu       sync.Mutex
	tok      *oauth2.Token
	margin   time.Duration // how long before its expiry the token is no longer used
}

func newOAuthTokens(snd Sender) *oauthTokens {
	return &oauthTokens{hc: &http.Client{Transport: senderTransport{snd}}, m: map[string]*tokenSlot{}}
}

// maxMargin is the most a token is given up before it expires (a tenth of its
// lifetime when that is less), so an attempt never carries one that expires on the way.
const maxMargin = 30 * time.Second

// token returns the access token for the endpoint, fetching one if none is held.
// The error says why none could be had, in words for the attempt log.
func (t *oauthTokens) token(ctx context.Context, endpointID string, a *consign.Auth) (string, error) {
	s := t.slot(endpointID, a)
	if tok := s.valid(); tok != "" {
		return tok, nil
	}
	select {
	case s.fetch <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.fetch }()
	if tok := s.valid(); tok != "" {
		return tok, nil // fetched while this attempt waited
	}
	cfg := clientcredentials.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL,
		Scopes: a.Scopes, AuthStyle: oauth2.AuthStyleInHeader}
	if a.AuthStyle == consign.AuthStyleParams {
		cfg.AuthStyle = oauth2.AuthStyleInParams
	}
	if a.Audience != "" {
		cfg.EndpointParams = url.Values{"audience": {a.Audience}}
	}
	began := time.Now()
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, t.hc))
	if err != nil {
		return "", tokenError(a.TokenURL, err)
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("the token endpoint %s answered without an access_token", a.TokenURL)
	}
	s.mu.Lock()
	s.tok, s.margin = tok, 0
	if !tok.Expiry.IsZero() {
		s.margin = min(maxMargin, tok.Expiry.Sub(began)/10)
	}
	s.mu.Unlock()
	return tok.AccessToken, nil
}

// drop forgets the endpoint's token if it is still access: the endpoint refused it.
func (t *oauthTokens) drop(endpointID, access string) {
	t.mu.Lock()
	s := t.m[endpointID]
	t.mu.Unlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.tok != nil && s.tok.AccessToken == access {
		s.tok = nil
	}
	s.mu.Unlock()
}

// slot returns the endpoint's slot for these settings, a new one when they changed.
func (t *oauthTokens) slot(endpointID string, a *consign.Auth) *tokenSlot {
	h := sha256.New()
	for _, f := range []string{a.TokenURL, a.ClientID, a.ClientSecret, strings.Join(a.Scopes, " "), a.Audience, a.AuthStyle} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[endpointID]
	if s == nil || s.settings != sum {
		s = &tokenSlot{settings: sum, fetch: make(chan struct{}, 1)}
		t.m[endpointID] = s
	}
	return s
}

// valid returns the held token while it is good for a while yet, or "".
func (s *tokenSlot) valid() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil || s.tok.AccessToken == "" {
		return ""
	}
	if !s.tok.Expiry.IsZero() && !time.Now().Before(s.tok.Expiry.Add(-s.margin)) {
		return ""
	}
	return s.tok.AccessToken
}

// tokenError says why no token came, without the client secret (which only the
// request carried): the token endpoint's status and OAuth error, or what the
// connection met.
func tokenError(tokenURL string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		msg := fmt.Sprintf("the token endpoint %s answered %d", tokenURL, re.Response.StatusCode)
		if re.ErrorCode != "" {
			msg += ": " + re.ErrorCode
			if re.ErrorDescription != "" {
				msg += " (" + re.ErrorDescription + ")"
			}
		} else if b := strings.TrimSpace(string(re.Body)); b != "" {
			msg += ": " + truncate(b, 200)
		}
		return errors.New(msg)
	}
	var se senderError
	if errors.As(err, &se) {
		return fmt.Errorf("the token endpoint %s could not be reached: %s", tokenURL, string(se))
	}
	return fmt.Errorf("no token from %s: %v", tokenURL, err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// senderTransport is an http.RoundTripper over the dispatcher's Sender, so that token
// requests obey the same target rules, timeouts and connection pool as deliveries.
type senderTransport struct{ snd Sender }

// senderError is what the Sender said when no reply came.
type senderError string

func (e senderError) Error() string { return string(e) }

func (st senderTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	h := r.Header.Clone()
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", consign.UserAgent)
	}
	out := st.snd.Send(r.Context(), destination.Request{Method: r.Method, URL: r.URL.String(), Header: h, Body: body})
	if out.Status == 0 {
		return nil, senderError(out.Err)
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", out.Status, http.StatusText(out.Status)), StatusCode: out.Status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: out.Header,
		Body: io.NopCloser(bytes.NewReader(out.Body)), ContentLength: int64(len(out.Body)), Request: r,
	}, nil
}
