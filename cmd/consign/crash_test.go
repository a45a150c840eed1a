package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/webhook"
)

// adminKey is the CONSIGN_ADMIN_KEY of the servers these tests start (40 characters).
const adminKey = "ck_test_9f86d081884c7d659a2feaa0c55ad015"

// TestCrashLosesNoAcknowledgedEvent is the at-least-once guarantee of SPEC.md ("Delivery
// semantics") checked on the real binary: an event acknowledged with 2xx survives a
// SIGKILL of the server, and is delivered after a restart on the same data directory.
//
// Sixteen clients publish single events and batches as fast as they can while the
// receiver refuses every other delivery with 503, so that at the crash the store holds
// events just acknowledged, deliveries succeeded, deliveries waiting for a retry and
// deliveries claimed with their attempt in flight. The server is then killed with
// requests in flight and restarted with a receiver that accepts everything; every
// acknowledged event id must reach the receiver, correctly signed, with its own payload.
// Duplicates are allowed (at least once) and reported.
func TestCrashLosesNoAcknowledgedEvent(t *testing.T) {
	t.Parallel()
	const (
		clients     = 16
		batchSize   = 10
		batchEvery  = 5 // every fifth request of a client is a batch
		killAfter   = 1500 * time.Millisecond
		minAcks     = 300
		killLatest  = 6 * time.Second // kill by then even with fewer acks
		maxRequests = 100_000         // per client: a bound, never reached in practice
		deliverBy   = 25 * time.Second
	)
	bin := consignBinary(t)
	dataDir := t.TempDir()

	rcv := newReceiver()
	rcv.failing.Store(true)
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)

	srv := startServer(t, bin, dataDir, nil)
	api := &apiClient{base: srv.url, http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
	}}}

	var org struct{ ID string }
	api.must(t, "POST", "/v1/orgs", map[string]any{"name": "crash test"}, http.StatusCreated, &org)
	var ep struct{ ID, Secret string }
	api.must(t, "POST", "/v1/orgs/"+org.ID+"/endpoints",
		map[string]any{"url": hook.URL + "/hook", "topics": []string{"order.*"}}, http.StatusCreated, &ep)
	if !strings.HasPrefix(ep.Secret, signing.SecretPrefix) {
		t.Fatalf("endpoint creation returned secret %q, want a %s… value", ep.Secret, signing.SecretPrefix)
	}
	rcv.setSecret(ep.Secret)

	// Load, then SIGKILL while requests are in flight.
	var (
		seq      atomic.Int64
		killed   atomic.Bool
		inflight atomic.Int64
		acks     = newAckLog()
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	eventsPath := "/v1/orgs/" + org.ID + "/events"
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < maxRequests; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := 1
				if i%batchEvery == batchEvery-1 {
					n = batchSize
				}
				seqs := make([]int64, n)
				for j := range seqs {
					seqs[j] = seq.Add(1)
				}
				inflight.Add(1)
				ids, status, body, err := api.publish(eventsPath, seqs)
				inflight.Add(-1)
				switch {
				case err != nil && killed.Load():
					acks.lostInFlight(n) // killed mid-request: not acknowledged
					return
				case err != nil:
					acks.unexpected(fmt.Sprintf("client %d: %v", c, err))
					return
				case status/100 != 2:
					acks.unexpected(fmt.Sprintf("client %d: status %d before the kill: %s", c, status, body))
					return
				}
				acks.add(ids, seqs)
			}
		}()
	}
	for time.Since(start) < killLatest {
		if time.Since(start) >= killAfter && acks.len() >= minAcks {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	inFlightAtKill := inflight.Load()
	killed.Store(true)
	srv.kill(t)
	killedAt := time.Since(start)
	close(stop)
	waitGroup(t, &wg, 15*time.Second, "publishing clients")
	if msgs := acks.unexpectedErrors(); len(msgs) > 0 {
		t.Fatalf("%d requests failed before the kill, first: %s", len(msgs), msgs[0])
	}
	acked := acks.snapshot()
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged before the kill")
	}
	deliveredBefore, _, _ := rcv.state()
	pendingAtKill := 0
	for id := range acked {
		if deliveredBefore[id] == 0 {
			pendingAtKill++
		}
	}
	t.Logf("killed after %v: %d events acknowledged, %d requests in flight (%d events in requests cut or refused by the kill, not acknowledged), %d delivered before the kill, %d acknowledged but not yet delivered",
		killedAt.Round(time.Millisecond), len(acked), inFlightAtKill, acks.inFlightEvents(), len(deliveredBefore), pendingAtKill)
	if pendingAtKill == 0 {
		t.Fatal("every acknowledged event was delivered before the kill: the test proved nothing about pending deliveries")
	}

	// Restart on the same data directory; the receiver accepts everything now.
	rcv.failing.Store(false)
	restart := time.Now()
	srv2 := startServer(t, bin, dataDir, nil)
	api.base = srv2.url
	t.Logf("restarted in %v", time.Since(restart).Round(time.Millisecond))

	var missing []string
	for i := 0; ; i++ {
		delivered, _, _ := rcv.state()
		missing = missing[:0]
		for id := range acked {
			if delivered[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Since(restart) > deliverBy || i > int(deliverBy/(50*time.Millisecond))+100 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		// Say where the missing ones are stuck: the store's state of their deliveries.
		states := map[string]int{}
		for i, id := range missing[:min(len(missing), 50)] {
			var ev struct {
				Deliveries []struct {
					ID            string `json:"id"`
					Status        string `json:"status"`
					AttemptsCount int    `json:"attempts_count"`
				} `json:"deliveries"`
			}
			status := api.do(t, "GET", "/v1/orgs/"+org.ID+"/events/"+id, nil, &ev)
			if i < 5 {
				t.Logf("  missing %s: GET event → %d, deliveries %+v", id, status, ev.Deliveries)
			}
			if status != http.StatusOK {
				states[fmt.Sprintf("event GET %d", status)]++
			}
			for _, d := range ev.Deliveries {
				states[fmt.Sprintf("%s after %d attempts", d.Status, d.AttemptsCount)]++
			}
		}
		t.Errorf("%d of %d acknowledged events were not delivered within %v of the restart; deliveries of the first %d: %v",
			len(missing), len(acked), deliverBy, min(len(missing), 50), states)
	} else {
		t.Logf("every acknowledged event delivered %v after the restart", time.Since(restart).Round(time.Millisecond))
	}

	delivered, received, bad := rcv.state()
	for _, b := range bad[:min(len(bad), 5)] {
		t.Errorf("receiver: %s", b)
	}
	if len(bad) > 5 {
		t.Errorf("receiver: %d problems in all", len(bad))
	}
	dupIDs, extra := 0, 0
	for _, n := range delivered {
		if n > 1 {
			dupIDs++
			extra += n - 1
		}
	}
	requests := 0
	for _, n := range received {
		requests += n
	}
	unacked := 0
	for id := range delivered {
		if _, ok := acked[id]; !ok {
			unacked++ // written, but the reply was cut by the kill: allowed
		}
	}
	t.Logf("receiver: %d events delivered (%d of them never acknowledged); %d delivered more than once "+
		"(%d duplicate deliveries, allowed: at least once); %d requests in all",
		len(delivered), unacked, dupIDs, extra, requests)
	for id, s := range rcv.seqs() {
		if want, ok := acked[id]; ok && s != want {
			t.Errorf("event %s was acknowledged with seq %d but delivered with seq %d", id, want, s)
		}
	}

	// The acknowledged events are readable through the API after the restart: the last
	// ones acknowledged before the kill (the likeliest to be lost) and a spread of others.
	order := acks.order()
	sample := order[max(0, len(order)-10):]
	for i := 0; i < len(order); i += max(1, len(order)/20) {
		sample = append(sample, order[i])
	}
	for _, id := range sample {
		var ev struct {
			ID      string
			Payload struct{ Seq int64 }
		}
		if status := api.do(t, "GET", "/v1/orgs/"+org.ID+"/events/"+id, nil, &ev); status != http.StatusOK {
			t.Errorf("GET event %s after the restart: %d, want 200", id, status)
			continue
		}
		if ev.ID != id || ev.Payload.Seq != acked[id] {
			t.Errorf("GET event %s after the restart: id %s seq %d, want seq %d", id, ev.ID, ev.Payload.Seq, acked[id])
		}
	}
}

// receiver is the webhook target: it checks each request's signature and envelope and
// records what it received and what it accepted, by webhook-id.
type receiver struct {
	failing atomic.Bool // refuse every other request with 503
	n       atomic.Int64

	mu        sync.Mutex
	secret    string
	received  map[string]int   // webhook-id → requests
	delivered map[string]int   // webhook-id → requests answered 200
	seq       map[string]int64 // webhook-id → data.seq of its body
	problems  []string
}

func newReceiver() *receiver {
	return &receiver{received: map[string]int{}, delivered: map[string]int{}, seq: map[string]int64{}}
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	rc.secret = s
	rc.mu.Unlock()
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.Header.Get("webhook-id")
	var env struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Seq int64 `json:"seq"`
		} `json:"data"`
	}
	problem := ""
	if err := json.Unmarshal(body, &env); err != nil {
		problem = fmt.Sprintf("%s: body is not the envelope: %v: %q", id, err, body)
	} else if env.ID != id || env.Type != "order.updated" || env.Data.Seq <= 0 {
		problem = fmt.Sprintf("%s: unexpected envelope %s", id, body)
	}
	refuse := rc.failing.Load() && rc.n.Add(1)%2 == 0

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if problem == "" {
		// Verified at receipt, as a partner would: the secret, sealed at rest, must open
		// again after the crash.
		if err := webhook.Verify(rc.secret, r.Header, body); err != nil {
			problem = fmt.Sprintf("%s: signature does not verify: %v", id, err)
		}
	}
	if problem != "" {
		rc.problems = append(rc.problems, problem)
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	rc.received[id]++
	if prev, ok := rc.seq[id]; ok && prev != env.Data.Seq {
		rc.problems = append(rc.problems, fmt.Sprintf("%s: delivered with seq %d and with seq %d", id, prev, env.Data.Seq))
	}
	rc.seq[id] = env.Data.Seq
	if refuse {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.delivered[id]++
	w.WriteHeader(http.StatusOK)
}

// state returns copies of the delivered and received counts and the problems seen.
func (rc *receiver) state() (delivered, received map[string]int, problems []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	delivered, received = make(map[string]int, len(rc.delivered)), make(map[string]int, len(rc.received))
	for k, v := range rc.delivered {
		delivered[k] = v
	}
	for k, v := range rc.received {
		received[k] = v
	}
	return delivered, received, slices.Clone(rc.problems)
}

func (rc *receiver) seqs() map[string]int64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]int64, len(rc.seq))
	for k, v := range rc.seq {
		out[k] = v
	}
	return out
}

// ackLog records the acknowledged events (id → seq) in the order their replies came.
type ackLog struct {
	mu       sync.Mutex
	seq      map[string]int64
	ids      []string
	inFlight int
	errs     []string
}

func newAckLog() *ackLog { return &ackLog{seq: map[string]int64{}} }

func (a *ackLog) add(ids []string, seqs []int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, id := range ids {
		if _, dup := a.seq[id]; dup {
			a.errs = append(a.errs, fmt.Sprintf("event id %s acknowledged twice", id))
		}
		a.seq[id] = seqs[i]
		a.ids = append(a.ids, id)
	}
}

func (a *ackLog) lostInFlight(n int) {
	a.mu.Lock()
	a.inFlight += n
	a.mu.Unlock()
}

func (a *ackLog) unexpected(msg string) {
	a.mu.Lock()
	a.errs = append(a.errs, msg)
	a.mu.Unlock()
}

func (a *ackLog) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ids)
}

func (a *ackLog) inFlightEvents() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inFlight
}

func (a *ackLog) unexpectedErrors() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.errs)
}

func (a *ackLog) snapshot() map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]int64, len(a.seq))
	for k, v := range a.seq {
		out[k] = v
	}
	return out
}

func (a *ackLog) order() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.ids)
}

// apiClient calls the server's API with the admin key.
type apiClient struct {
	base string
	http *http.Client
}

// publish posts seqs as order.updated events, one alone or a batch, and returns the ids
// of the reply. A 2xx reply whose ids it returns is an acknowledgement; an error means
// no complete reply was read.
func (c *apiClient) publish(path string, seqs []int64) (ids []string, status int, body []byte, err error) {
	type in struct {
		Type    string         `json:"type"`
		Payload map[string]any `json:"payload"`
	}
	events := make([]in, len(seqs))
	for i, s := range seqs {
		events[i] = in{Type: "order.updated", Payload: map[string]any{"seq": s, "order_id": fmt.Sprintf("ord_%d", s)}}
	}
	var req any = events[0]
	if len(seqs) > 1 {
		path += "/batch"
		req = map[string]any{"events": events}
	}
	status, body, err = c.raw("POST", path, req)
	if err != nil || status/100 != 2 {
		return nil, status, body, err
	}
	type out struct {
		ID      string
		Payload struct{ Seq int64 }
	}
	var got []out
	if len(seqs) == 1 {
		var one out
		err = json.Unmarshal(body, &one)
		got = []out{one}
	} else {
		var batch struct{ Data []out }
		err = json.Unmarshal(body, &batch)
		got = batch.Data
	}
	if err != nil {
		return nil, status, body, fmt.Errorf("decode %d reply: %v: %s", status, err, body)
	}
	if len(got) != len(seqs) {
		return nil, status, body, fmt.Errorf("%d events sent, %d in the %d reply", len(seqs), len(got), status)
	}
	for i, e := range got {
		if !strings.HasPrefix(e.ID, "evt_") || e.Payload.Seq != seqs[i] {
			return nil, status, body, fmt.Errorf("reply event %d is %s with seq %d, want an evt_ id with seq %d", i, e.ID, e.Payload.Seq, seqs[i])
		}
		ids = append(ids, e.ID)
	}
	return ids, status, body, nil
}

func (c *apiClient) raw(method, path string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminKey)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, b, err
}

// do calls the API and decodes a 2xx reply into out; it returns the status.
func (c *apiClient) do(tb testing.TB, method, path string, in, out any) int {
	tb.Helper()
	status, body, err := c.raw(method, path, in)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	if status/100 == 2 && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			tb.Fatalf("%s %s: decode reply: %v: %s", method, path, err, body)
		}
	}
	return status
}

func (c *apiClient) must(tb testing.TB, method, path string, in any, want int, out any) {
	tb.Helper()
	status, body, err := c.raw(method, path, in)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		tb.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			tb.Fatalf("%s %s: decode reply: %v: %s", method, path, err, body)
		}
	}
}

// serverProc is a running `consign serve`.
type serverProc struct {
	cmd  *exec.Cmd
	out  *capWriter
	url  string
	done chan struct{} // closed when the process has exited
}

var listeningRE = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// startServer starts `consign serve` on a free loopback port, with env added to its
// environment and args to its flags, and returns once /healthz answers. The process is killed when the test ends; its output is logged if the test
// failed.
func startServer(tb testing.TB, bin, dataDir string, env []string, args ...string) *serverProc {
	tb.Helper()
	p := &serverProc{out: &capWriter{max: 1 << 20}, done: make(chan struct{})}
	// Port 0 and the port read from the banner: a port picked in advance could be taken
	// by another test before the server binds it.
	p.cmd = exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dataDir, "--insecure-targets"}, args...)...)
	p.cmd.Env = hermeticEnv(append([]string{"CONSIGN_ADMIN_KEY=" + adminKey}, env...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start consign serve: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.kill(tb)
		if tb.Failed() {
			tb.Logf("consign serve (pid %d) output:\n%s", p.cmd.Process.Pid, p.out.String())
		}
	})

	// Starting includes migrations (a fresh PostgreSQL database) or recovery after a
	// kill: a minute, for a loaded CI machine, not a quiet one's seconds.
	deadline := time.Now().Add(time.Minute)
	for p.url == "" {
		if m := listeningRE.FindStringSubmatch(p.out.String()); m != nil {
			p.url = m[1]
			break
		}
		select {
		case <-p.done:
			tb.Fatalf("consign serve exited before listening (%v):\n%s", p.cmd.ProcessState, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("consign serve did not say where it listens within a minute:\n%s", p.out.String())
		}
	}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()
	for {
		resp, err := hc.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("GET %s/healthz did not answer 200 within a minute of the start (last: %v)", p.url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL (no graceful shutdown) and waits for the process to be gone.
func (p *serverProc) kill(tb testing.TB) {
	tb.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		tb.Errorf("kill consign serve: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		tb.Errorf("consign serve (pid %d) still running 10 s after SIGKILL", p.cmd.Process.Pid)
	}
}

// capWriter keeps the first max bytes written to it; it is safe for concurrent use.
type capWriter struct {
	mu      sync.Mutex
	max     int
	buf     bytes.Buffer
	dropped int
}

func (w *capWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.buf.Len(); room < len(b) {
		w.buf.Write(b[:max(room, 0)])
		w.dropped += len(b) - max(room, 0)
	} else {
		w.buf.Write(b)
	}
	return len(b), nil
}

func (w *capWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped > 0 {
		return fmt.Sprintf("%s\n[%d more bytes not kept]", w.buf.String(), w.dropped)
	}
	return w.buf.String()
}

// waitGroup waits for wg, failing the test if it takes longer than d.
func waitGroup(tb testing.TB, wg *sync.WaitGroup, d time.Duration, what string) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		tb.Fatalf("%s still running %v after the kill", what, d)
	}
}
