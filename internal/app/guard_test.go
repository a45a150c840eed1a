package app_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/guard"
)

// rawRequest opens a connection to the app and writes a request's head announcing
// length bytes of body, then the first bytes of it; the rest is the caller's to send.
func rawRequest(tb testing.TB, e *env, method, path, key string, length int, first string) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.c.base, "http://"))
	require.NoError(tb, err)
	tb.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: consign\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, path, length)
	if key != "" {
		head += "Authorization: Bearer " + key + "\r\n"
	}
	_, err = io.WriteString(conn, head+"\r\n"+first)
	require.NoError(tb, err)
	return conn
}

// readReply reads the reply to a request written on conn.
func readReply(tb testing.TB, conn net.Conn, within time.Duration) *reply {
	tb.Helper()
	require.NoError(tb, conn.SetReadDeadline(time.Now().Add(within)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(tb, err, "no reply within %s", within)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return &reply{status: resp.StatusCode, header: resp.Header, body: body}
}

// TestAnnouncedBodiesDoNotReserveMemory: connections that announce the largest batch
// (16 MiB) and send one byte cost the server about what they sent, not what they
// announced (reserving the announced size would take 640 MiB for 40 of them).
//
// Not parallel: it reads the process's allocation counters, which parallel tests would
// move.
func TestAnnouncedBodiesDoNotReserveMemory(t *testing.T) {
	e := start(t)
	o := e.newOrg("acme")
	const conns, announced = 40, 16 << 20
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		rawRequest(t, e, "POST", "/v1/orgs/"+o.id+"/events/batch", o.key, announced, "{")
	}
	// Each handler is reading its body once its byte is charged to the budget.
	require.Eventually(t, func() bool { return e.app.Guard.Held() == conns }, waitFor, tick,
		"the server holds %d bytes of bodies, want %d", e.app.Guard.Held(), conns)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d connections announcing %d MiB each: %.1f MiB allocated, heap in use %+.1f MiB",
		conns, announced>>20, float64(allocated)/(1<<20), (float64(after.HeapInuse)-float64(before.HeapInuse))/(1<<20))
	require.Less(t, allocated, uint64(conns*announced/20),
		"%d connections that sent a byte each made the server allocate %d MiB", conns, allocated>>20)
}

// TestSlowBodyIsCut: a body that trickles in (a byte every 200 ms) is cut once
// BodyTimeout has passed, with 408 and a problem saying why; a long body that keeps up
// BodyMinRate goes through however long it takes.
func TestSlowBodyIsCut(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *app.Config) {
		c.Guard = guard.Config{BodyTimeout: time.Second, BodyMinRate: 1 << 10}
	})
	o := e.newOrg("acme")

	t.Run("trickle", func(t *testing.T) {
		t.Parallel()
		begun := time.Now()
		conn := rawRequest(t, e, "POST", "/v1/orgs/"+o.id+"/events", o.key, 1000, "{")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
					if _, err := io.WriteString(conn, " "); err != nil {
						return
					}
				}
			}
		}()
		r := readReply(t, conn, 10*time.Second)
		took := time.Since(begun)
		require.Equal(t, http.StatusRequestTimeout, r.status, "%s", r.body)
		requireProblem(t, r)
		require.Contains(t, string(r.body), "arrived too slowly")
		require.Less(t, took, 5*time.Second, "a trickling body was cut after %s; BodyTimeout is 1s", took)
		require.Contains(t, e.scrape(), `consign_requests_refused_total{reason="slow_body"} 1`)
	})

	t.Run("steady", func(t *testing.T) {
		t.Parallel()
		// 6 KiB at 4 KiB/s: past BodyTimeout, and well within BodyMinRate (1 KiB/s) even if
		// this machine stretches the pauses.
		body := fmt.Sprintf(`{"type": "order.created", "payload": {"note": %q}}`, strings.Repeat("x", 6<<10))
		conn := rawRequest(t, e, "POST", "/v1/orgs/"+o.id+"/events", o.key, len(body), "")
		for rest := body; rest != ""; {
			n := min(len(rest), 410)
			_, err := io.WriteString(conn, rest[:n])
			require.NoError(t, err)
			rest = rest[n:]
			time.Sleep(100 * time.Millisecond) // the pace of a slow link, not a wait for the server
		}
		r := readReply(t, conn, 10*time.Second)
		require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	})
}

// TestBodyBudget: while requests in flight hold the server's whole body budget, any
// further body — on every route that reads one — is answered 503 with Retry-After, as a
// problem (a page on the dashboard); once they are gone, the same request goes through.
func TestBodyBudget(t *testing.T) {
	t.Parallel()
	const budget = 1 << 20
	e := start(t, func(c *app.Config) { c.Guard = guard.Config{BodyBudget: budget} })
	o := e.newOrg("acme")
	src := e.createSource(o, map[string]any{"name": "shop", "topic": "shipment.created"})

	// One batch holds nearly all of the budget, its body unfinished.
	const held = budget - 16<<10
	hog := rawRequest(t, e, "POST", "/v1/orgs/"+o.id+"/events/batch", o.key, 2<<20, `{"events": [`+strings.Repeat(" ", held-12))
	require.Eventually(t, func() bool { return e.app.Guard.Held() == held }, waitFor, tick,
		"the server holds %d bytes, want %d", e.app.Guard.Held(), held)

	event := fmt.Sprintf(`{"type": "order.created", "payload": {"note": %q}}`, strings.Repeat("x", 64<<10))
	cases := []struct {
		name, path, key, contentType, body string
		after                              int // the status once the budget is free
	}{
		{"publish", "/v1/orgs/" + o.id + "/events", o.key, "application/json", event, http.StatusAccepted},
		{"create org", "/v1/orgs", adminKey, "application/json", fmt.Sprintf(`{"name": %q}`, strings.Repeat("n", 64<<10)), http.StatusUnprocessableEntity},
		{"source", strings.TrimPrefix(src.IngestURL, e.c.base), "", "application/json", event, http.StatusOK},
		{"readycloud", "/api/v2/orgs/" + o.id + "/webhooks/", o.key, "application/json", fmt.Sprintf(`{"remote_url": %q}`, strings.Repeat("u", 64<<10)), http.StatusBadRequest},
		{"dashboard sign-in", "/ui/signin", "", "application/x-www-form-urlencoded", "key=" + strings.Repeat("k", 64<<10), http.StatusForbidden},
	}
	send := func(i int) *reply {
		tc := cases[i]
		return e.c.raw("POST", tc.path, tc.body, tc.key, http.Header{"Content-Type": {tc.contentType}})
	}
	for i, tc := range cases {
		r := send(i)
		require.Equal(t, http.StatusServiceUnavailable, r.status, "%s: %s", tc.name, r.body)
		require.Equal(t, "1", r.header.Get("Retry-After"), tc.name)
		switch {
		case strings.HasPrefix(tc.path, "/api/v2/"):
			require.Equal(t, "application/json", mediaType(r.header), "ReadyCloud's error shape: %s", r.body)
			require.Contains(t, r.json(t), "detail", tc.name)
		case !strings.HasPrefix(tc.path, "/ui/"):
			requireProblem(t, r)
		}
		require.Contains(t, string(r.body), "try again in a moment", tc.name)
	}

	hog.Close()
	require.Eventually(t, func() bool { return e.app.Guard.Held() == 0 }, waitFor, tick,
		"the server still holds %d bytes after the batch's client left", e.app.Guard.Held())
	for i, tc := range cases {
		r := send(i)
		require.Equal(t, tc.after, r.status, "%s: %s", tc.name, r.body)
	}
	m := e.scrape()
	require.Contains(t, m, fmt.Sprintf(`consign_requests_refused_total{reason="body_budget"} %d`, len(cases)))
	require.Contains(t, m, "consign_request_body_bytes 0\n")
}

// guesses sends n requests that each present a wrong key from one address and counts
// the replies by status; each 429 must say when to try again.
func guesses(t *testing.T, n int, send func(i int) *reply) map[int]int {
	t.Helper()
	counts := map[int]int{}
	for i := range n {
		r := send(i)
		counts[r.status]++
		if r.status == http.StatusTooManyRequests {
			require.NotEmpty(t, r.header.Get("Retry-After"), "a 429 says when to try again")
		}
	}
	return counts
}

// TestGuessesAreThrottled: an address that keeps presenting wrong keys — as API keys or
// at the dashboard's sign-in — gets FailureBurst answers, then 429 with Retry-After
// before its keys are even looked at; a key in use from the same address keeps working.
func TestGuessesAreThrottled(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	burst := guard.DefaultFailureBurst
	e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/endpoints", nil, o.key) // a key in use
	// After the burst, the allowance grows by one a second (the default rate): a slow run
	// earns a few more answers.
	begun := time.Now()
	refilled := func() int { return int(time.Since(begun).Seconds()) + 1 }

	t.Run("API", func(t *testing.T) {
		got := guesses(t, 1000, func(i int) *reply {
			r := e.c.raw("GET", "/v1/orgs/"+o.id+"/endpoints", nil, fmt.Sprintf("csk_guess%06d", i), nil)
			if r.status == http.StatusTooManyRequests {
				p := requireProblem(t, r)
				require.Contains(t, p.Detail, "too many failed attempts")
			}
			return r
		})
		t.Logf("1,000 bad API keys from one address: %v", got)
		require.GreaterOrEqual(t, got[http.StatusUnauthorized], burst)
		require.LessOrEqual(t, got[http.StatusUnauthorized], burst+refilled(), "after the burst, one a second")
		require.Equal(t, 1000, got[http.StatusUnauthorized]+got[http.StatusTooManyRequests], "%v", got)
		// The org's own key, in use, still works from the throttled address.
		e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/endpoints", nil, o.key)
	})

	t.Run("dashboard", func(t *testing.T) {
		b := newBrowser(t, e.c.base)
		got := guesses(t, 300, func(i int) *reply {
			return b.post("/ui/signin", url.Values{"csrf": {b.signinForm()}, "key": {fmt.Sprintf("csk_guess%06d", i)}})
		})
		t.Logf("300 bad sign-ins from one address: %v", got)
		require.LessOrEqual(t, got[http.StatusUnauthorized], refilled(), "the API's failures count for the dashboard too")
		require.Equal(t, 300, got[http.StatusUnauthorized]+got[http.StatusTooManyRequests], "%v", got)
		r := b.post("/ui/signin", url.Values{"csrf": {b.signinForm()}, "key": {adminKey}})
		require.Equal(t, http.StatusSeeOther, r.status, "the admin key, in use, still signs in: %s", r.body)
		require.Regexp(t, `consign_requests_refused_total\{reason="throttled"\} \d{4}\n`, e.scrape(), "the 429s are counted")
	})
}

// TestTrustedProxies: behind a trusted proxy, failures count against the address in
// X-Forwarded-For, so one client's guesses do not throttle the others; from anyone else
// the header is ignored, so a client cannot spread its guesses over made-up addresses.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		proxies []string
		// the other client's first wrong key, after the first client's burst
		other int
	}{
		{"trusted", []string{"127.0.0.0/8"}, http.StatusUnauthorized},
		{"not trusted", nil, http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, func(c *app.Config) { c.Guard.TrustedProxies = tc.proxies })
			from := func(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }
			got := guesses(t, 40, func(i int) *reply {
				return e.c.raw("GET", "/v1/orgs", nil, fmt.Sprintf("csk_guess%06d", i), from("198.51.100.1"))
			})
			require.Positive(t, got[http.StatusTooManyRequests], "%v", got)
			r := e.c.raw("GET", "/v1/orgs", nil, "csk_other", from("198.51.100.2"))
			require.Equal(t, tc.other, r.status, "%s", r.body)
		})
	}
}

// TestWeakAdminKeyRefused: an operator-chosen admin key that is short or patterned
// stops the server before it opens anything, saying why and what to use.
func TestWeakAdminKeyRefused(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"an-admin-key-of-24-chars", "consign-admin-0123456789abcdefghij", strings.Repeat("hunter2!", 5)} {
		dir := t.TempDir() + "/data"
		_, err := app.Start(t.Context(), app.Config{Addr: "127.0.0.1:0", DataDir: dir, AdminKey: key})
		require.ErrorContains(t, err, "AdminKey (CONSIGN_ADMIN_KEY)", key)
		require.ErrorContains(t, err, `use at least 32 random characters, such as the output of "openssl rand -hex 32"`, key)
		require.NoDirExists(t, dir)
	}
}

// browser is a client with cookies that does not follow redirects, as the dashboard's
// forms need.
type browser struct {
	tb   testing.TB
	base string
	hc   *http.Client
}

func newBrowser(tb testing.TB, base string) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(tb, err)
	return &browser{tb: tb, base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signinForm opens the sign-in form and returns its CSRF token.
func (b *browser) signinForm() string {
	b.tb.Helper()
	resp, err := b.hc.Get(b.base + "/ui/signin")
	require.NoError(b.tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.tb, err)
	m := csrfField.FindSubmatch(body)
	require.NotNil(b.tb, m, "no CSRF token on the sign-in form:\n%s", body)
	return string(m[1])
}

func (b *browser) post(path string, form url.Values) *reply {
	b.tb.Helper()
	resp, err := b.hc.PostForm(b.base+path, form)
	require.NoError(b.tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.tb, err)
	return &reply{status: resp.StatusCode, header: resp.Header, body: body}
}
