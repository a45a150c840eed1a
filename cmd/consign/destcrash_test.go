package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/consign-dev/consign/internal/brokertest"
)

// crashTarget is a place on a broker for the crash test, reached through a proxy.
type crashTarget struct {
	url     string            // the endpoint URL
	proxy   *brokertest.Proxy // stops and starts the broker for the server
	dedupes bool              // the broker drops a resend (NATS: Nats-Msg-Id)
	// read returns every message on the target so far, as webhook-id → the bodies.
	read func(t *testing.T) map[string][][]byte
}

// crashTargets make the crash test's targets: each kind, its broker reached through a
// proxy that takes it away (Kafka: an in-process kfake that advertises the proxy's
// address, so the server's client dials the proxy for every broker it is told of).
var crashTargets = []struct {
	name   string
	target func(t *testing.T) crashTarget
}{
	{"NATS", func(t *testing.T) crashTarget {
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
		return crashTarget{url: "nats://" + proxy.Addr + "/" + name + ".orders", proxy: proxy, dedupes: true,
			read: func(t *testing.T) map[string][][]byte {
				out := map[string][][]byte{}
				info, err := st.Info(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				for s := info.State.FirstSeq; s <= info.State.LastSeq && info.State.Msgs > 0; s++ {
					m, err := st.GetMsg(t.Context(), s)
					if err != nil {
						t.Fatal(err)
					}
					id := m.Header.Get("webhook-id")
					out[id] = append(out[id], m.Data)
				}
				return out
			}}
	}},
	{"AMQP", func(t *testing.T) crashTarget {
		c, err := amqp.Dial(brokertest.AMQPServer(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		name := "crash-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = ch.QueueDelete(name, false, false, false) })
		proxy := brokertest.NewProxy(t, brokertest.AMQPAddr)
		got := map[string][][]byte{} // what was taken off the queue so far
		return crashTarget{url: "amqp://guest:guest@" + proxy.Addr + "/?exchange=&routing_key=" + name, proxy: proxy,
			read: func(t *testing.T) map[string][][]byte {
				for {
					m, ok, err := ch.Get(name, true)
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						return got
					}
					got[m.MessageId] = append(got[m.MessageId], m.Body)
				}
			}}
	}},
	{"Redis", func(t *testing.T) crashTarget {
		c := redis.NewClient(&redis.Options{Addr: brokertest.RedisServer(t), DB: 4})
		t.Cleanup(func() { _ = c.Close() })
		name := "crash-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		t.Cleanup(func() { c.Del(context.Background(), name) })
		proxy := brokertest.NewProxy(t, brokertest.RedisAddr)
		return crashTarget{url: "redis://" + proxy.Addr + "/4?stream=" + name, proxy: proxy,
			read: func(t *testing.T) map[string][][]byte {
				entries, err := c.XRange(t.Context(), name, "-", "+").Result()
				if err != nil {
					t.Fatal(err)
				}
				out := map[string][][]byte{}
				for _, e := range entries {
					id, _ := e.Values["webhook-id"].(string)
					body, _ := e.Values["body"].(string)
					out[id] = append(out[id], []byte(body))
				}
				return out
			}}
	}},
	{"Kafka", func(t *testing.T) crashTarget {
		const topic = "orders"
		c, proxy, past := brokertest.KafkaBehindProxy(t, topic)
		// The reader dials the broker past the proxy, so it reads while the server cannot.
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.Dialer(past), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		got := map[string][][]byte{} // what was read so far
		return crashTarget{url: "kafka://" + proxy.Addr + "/" + topic, proxy: proxy,
			read: func(t *testing.T) map[string][][]byte {
				for { // until a poll finds nothing new within a second
					ctx, cancel := context.WithTimeout(t.Context(), time.Second)
					fs := cl.PollFetches(ctx)
					cancel()
					n := 0
					fs.EachRecord(func(r *kgo.Record) {
						n++
						for _, h := range r.Headers {
							if h.Key == "webhook-id" {
								got[string(h.Value)] = append(got[string(h.Value)], r.Value)
							}
						}
					})
					for _, e := range fs.Errors() {
						if !errors.Is(e.Err, context.DeadlineExceeded) {
							t.Fatalf("read %s: %v", topic, e.Err)
						}
					}
					if n == 0 {
						return got
					}
				}
			}}
	}},
}

// TestCrashLosesNothingOnTheBroker is the at-least-once guarantee for a broker
// destination, on the real binary, for each kind whose broker runs here: every event
// acknowledged before a SIGKILL of the server ends up on the broker after a restart —
// only once on NATS, whose stream drops a resend (the event id is the message's
// Nats-Msg-Id), at least once on RabbitMQ, Redis and Kafka, which keep a resend (a
// publish in flight at the kill) as a second message with the same webhook-id (Kafka's
// idempotent producer drops a resend within one server's run only).
//
// Clients publish as fast as they can; halfway, the broker becomes unreachable (a proxy
// in front of it stops), so that at the kill some deliveries are on the broker, some
// wait for a retry and some have their publish in flight. The server is killed with
// requests in flight, the broker comes back, the server restarts on the same data, and
// the broker must then hold each acknowledged event.
func TestCrashLosesNothingOnTheBroker(t *testing.T) {
	t.Parallel()
	for _, kind := range crashTargets {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			crashOnBroker(t, kind.target(t))
		})
	}
}

func crashOnBroker(t *testing.T, target crashTarget) {
	const (
		clients = 8
		minAcks = 300
		by      = 30 * time.Second
	)
	bin := consignBinary(t)
	dataDir := t.TempDir()
	srv := startServer(t, bin, dataDir, nil)
	api := &apiClient{base: srv.url, http: &http.Client{Timeout: 10 * time.Second}}
	var org struct{ ID string }
	api.must(t, "POST", "/v1/orgs", map[string]any{"name": "broker crash"}, http.StatusCreated, &org)
	api.must(t, "POST", "/v1/orgs/"+org.ID+"/endpoints", map[string]any{
		"url": target.url, "topics": []string{"order.*"},
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
	target.proxy.Stop() // the broker goes away: what follows waits for a retry
	waitAcks(minAcks)
	killed.Store(true)
	srv.kill(t)
	close(stop)
	waitGroup(t, &wg, 15*time.Second, "publishing clients")
	if msgs := acks.unexpectedErrors(); len(msgs) > 0 {
		t.Fatalf("%d requests failed before the kill, first: %s", len(msgs), msgs[0])
	}
	acked := acks.snapshot()
	missing := func(got map[string][][]byte) int {
		n := 0
		for id := range acked {
			if len(got[id]) == 0 {
				n++
			}
		}
		return n
	}
	before := missing(target.read(t))
	t.Logf("killed: %d events acknowledged, %d not on the broker", len(acked), before)
	if before == 0 {
		t.Fatal("every acknowledged event was on the broker before the kill: the test proved nothing")
	}

	target.proxy.Start()
	startServer(t, bin, dataDir, nil)
	restart := time.Now()
	var got map[string][][]byte
	for {
		got = target.read(t)
		n := missing(got)
		if n == 0 {
			break
		}
		if time.Since(restart) > by {
			t.Fatalf("%d of %d acknowledged events still not on the broker %v after the restart", n, len(acked), by)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("every acknowledged event on the broker %v after the restart", time.Since(restart).Round(time.Millisecond))

	// Each acknowledged event is there with its own payload; once where the broker dedupes.
	dups := 0
	for id, want := range acked {
		for _, body := range got[id] {
			if seqOf(body) != want {
				t.Errorf("event %s: message %s does not carry seq %d", id, body, want)
			}
		}
		dups += len(got[id]) - 1
		if target.dedupes && len(got[id]) != 1 {
			t.Errorf("event %s is on the broker %d times, want once", id, len(got[id]))
		}
	}
	t.Logf("%d resends kept as second messages", dups)
}

// seqOf returns data.seq of an envelope.
func seqOf(body []byte) int64 {
	var env struct{ Data struct{ Seq int64 } }
	_ = json.Unmarshal(body, &env)
	return env.Data.Seq
}
