package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsDeliveries is the nats scenario: deliveries/s 1 → 1 to a NATS JetStream stream,
// measured as d11 is (batch-fed, paced, after the warm-up) with the endpoint's URL
// naming a subject of a stream with file storage on the server at Config.NATSURL. A
// delivery counts when the message reaches a plain subscriber of that subject, which the
// server routes it to as it stores it; the server's own ack is what completes the
// attempt on Consign's side. The stream is made for the run and deleted after it, and
// the figure notes how many messages it held at the end. When the NATS server is a
// process of this machine that the bench may read (found by the port it listens on, as
// the Consign server is), the figure carries its CPU per message too: the broker shares
// the machine's cores with the server, so its cost per message bounds the rate as the
// server's own does.
func (r *runner) natsDeliveries(ctx context.Context) error {
	nc, err := nats.Connect(r.cfg.NATSURL, nats.Name("consign bench"))
	if err != nil {
		return fmt.Errorf("connect to %s (--nats-url; the server needs JetStream, -js): %w", r.cfg.NATSURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	name := "consign_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"},
		Storage: jetstream.FileStorage, MaxAge: time.Hour})
	if err != nil {
		return fmt.Errorf("create stream %s on %s: %w", name, r.cfg.NATSURL, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, name)
	}()
	subject := name + ".orders"
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		r.rcv.record(ScenarioNATS, m.Header.Get("webhook-id"), 0, time.Now())
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		return err
	}

	org, key, err := r.newOrg(ctx, ScenarioNATS)
	if err != nil {
		return err
	}
	var ep struct {
		ID string `json:"id"`
	}
	in := map[string]any{"url": r.cfg.NATSURL + "/" + subject, "topics": []string{r.eventType()}, "description": "consign bench stream"}
	if err := r.api.call(ctx, http.MethodPost, "/v1/orgs/"+org+"/endpoints", key, in, &ep); err != nil {
		return fmt.Errorf("create endpoint (does the server allow loopback targets? run it with --insecure-targets): %w", err)
	}
	if proc, err := findListener(r.cfg.NATSURL); err != nil {
		r.p.printf("note: the NATS server's CPU time is not read (%v)\n", err)
	} else {
		r.broker = proc
		defer func() { r.broker = nil }()
		r.p.printf("NATS server process %d (%s, %s): its CPU time is read from /proc/%d/stat for its CPU per message\n", proc.pid, proc.name, proc.found, proc.pid)
	}
	th := r.deliver(ctx, org, key, ScenarioNATS, []string{ep.ID}, figNATS, r.cfg.FlatOut)
	if info, err := st.Info(ctx); err == nil {
		th.StreamMessages = int(info.State.Msgs)
	}
	r.rep.NATS = th
	r.p.printf("%s\n", th.line(figNATS, r.cfg))
	return nil
}
