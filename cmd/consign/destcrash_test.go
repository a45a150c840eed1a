package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/consign-dev/consign/internal/brokertest"
)

// TestCrashLosesNothingOnTheBroker is the at-least-once guarantee for a broker
// destination, on the real binary: every event acknowledged before a SIGKILL of the
// server ends up on the JetStream stream after a restart, and only once, since the
// event id is the message's Nats-Msg-Id.
//
// Clients publish as fast as they can; halfway, the broker becomes unreachable (a proxy
// in front of it stops), so that at the kill some deliveries are on the stream, some
// wait for a retry and some have their publish in flight. The server is killed with
// requests in flight, the broker comes back, the server restarts on the same data, and
// the stream must then hold each acknowledged event exactly once.
func TestCrashLosesNothingOnTheBroker(t *testing.T) {
	t.Parallel()
	const (
		clients = 8
		minAcks = 300
		by      = 30 * time.Second
	)
	nc, err := nats.Connect(brokertest.NATSServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := "crash" + strconv.FormatInt(time.Now().UnixNano(), 36)
	st, err := js.CreateOrUpdateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"},
		Storage: jetstream.FileStorage, Duplicates: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	proxy := brokertest.NewProxy(t, brokertest.NATSAddr)

	bin := consignBinary(t)
	dataDir := t.TempDir()
	srv := startServer(t, bin, dataDir, nil)
	api := &apiClient{base: srv.url, http: &http.Client{Timeout: 10 * time.Second}}
	var org struct{ ID string }
	api.must(t, "POST", "/v1/orgs", map[string]any{"name": "broker crash"}, http.StatusCreated, &org)
	api.must(t, "POST", "/v1/orgs/"+org.ID+"/endpoints", map[string]any{
		"url": "nats://" + proxy.Addr + "/" + name + ".orders", "topics": []string{"order.*"},
		"retry": map[string]any{"schedule": []string{"200ms"}, "max_age": "10m"}}, http.StatusCreated, nil)

	var (
		seq    atomic.Int64
		killed atomic.Bool
		acks   = newAckLog()
		wg     sync.WaitGroup
		stop   = make(chan struct{})
	)
	for c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := 1 + (i%5/4)*9 // every fifth request a batch of ten
				seqs := make([]int64, n)
				for j := range seqs {
					seqs[j] = seq.Add(1)
				}
				ids, status, body, err := api.publish("/v1/orgs/"+org.ID+"/events", seqs)
				switch {
				case err != nil && killed.Load():
					return // cut by the kill: not acknowledged
				case err != nil || status/100 != 2:
					acks.unexpected(fmt.Sprintf("client %d: %d %v %s", c, status, err, body))
					return
				}
				acks.add(ids, seqs)
			}
		})
	}
	waitAcks := func(n int) {
		for deadline := time.Now().Add(by); acks.len() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("only %d events acknowledged in %v", acks.len(), by)
			}
		}
	}
	waitAcks(minAcks / 2)
	proxy.Stop() // the broker goes away: what follows waits for a retry
	waitAcks(minAcks)
	killed.Store(true)
	srv.kill(t)
	close(stop)
	waitGroup(t, &wg, 15*time.Second, "publishing clients")
	if msgs := acks.unexpectedErrors(); len(msgs) > 0 {
		t.Fatalf("%d requests failed before the kill, first: %s", len(msgs), msgs[0])
	}
	acked := acks.snapshot()
	before, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed: %d events acknowledged, %d on the stream", len(acked), before.State.Msgs)
	if before.State.Msgs >= uint64(len(acked)) {
		t.Fatal("every acknowledged event was on the stream before the kill: the test proved nothing")
	}

	proxy.Start()
	startServer(t, bin, dataDir, nil)
	restart := time.Now()
	for {
		info, err := st.Info(t.Context())
		if err == nil && info.State.Msgs >= uint64(len(acked)) {
			break
		}
		if time.Since(restart) > by {
			t.Fatalf("%d of %d acknowledged events on the stream %v after the restart", info.State.Msgs, len(acked), by)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("every acknowledged event on the stream %v after the restart", time.Since(restart).Round(time.Millisecond))

	// Each acknowledged event is on the stream once, with its own payload.
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for s := info.State.FirstSeq; s <= info.State.LastSeq; s++ {
		m, err := st.GetMsg(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		id := m.Header.Get("webhook-id")
		seen[id]++
		if want, ok := acked[id]; ok && seqOf(m.Data) != want {
			t.Errorf("event %s: message %s does not carry seq %d", id, m.Data, want)
		}
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("event %s is on the stream %d times, want once", id, seen[id])
		}
	}
}

// seqOf returns data.seq of an envelope.
func seqOf(body []byte) int64 {
	var env struct{ Data struct{ Seq int64 } }
	_ = json.Unmarshal(body, &env)
	return env.Data.Seq
}
