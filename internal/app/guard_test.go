package app_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
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
// announced. It used to reserve the announced size for each: 40 such connections took
// 640 MiB.
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
// BodyMinRate goes through however long it takes. The server used to wait 60 s for any
// body.
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
	})

	t.Run("steady", func(t *testing.T) {
		t.Parallel()
		// 3 KiB at 2 KiB/s: past BodyTimeout, within BodyMinRate (1 KiB/s).
		body := fmt.Sprintf(`{"type": "order.created", "payload": {"note": %q}}`, strings.Repeat("x", 3<<10))
		conn := rawRequest(t, e, "POST", "/v1/orgs/"+o.id+"/events", o.key, len(body), "")
		for rest := body; rest != ""; {
			n := min(len(rest), 205)
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
		{"readycloud", "/api/v2/orgs/" + o.id + "/webhooks/", o.key, "application/json", fmt.Sprintf(`{"remote_url": %q}`, strings.Repeat("u", 64<<10)), http.StatusUnprocessableEntity},
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
		if !strings.HasPrefix(tc.path, "/ui/") {
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
}
