// Package natsdest is the NATS JetStream kind of destination: an endpoint URL
// tls://[user:password@]host:4222/<subject> (nats:// for plaintext, with
// --insecure-targets) publishes each attempt to that subject, and
// the attempt succeeds when the stream that takes the subject acknowledges it (PubAck);
// the attempt's response records the stream and sequence.
//
// The message is the request an HTTP endpoint would get: the body as the data, the
// headers (webhook-id, webhook-timestamp, webhook-signature, the endpoint's own…) as
// message headers with lower-case names, and Nats-Msg-Id set to the event id, so the
// stream drops a second copy of an event within its duplicate window (a retry after a
// lost ack, a resend after a crash).
//
// One connection per server and credentials serves every endpoint that names them;
// nats.go reconnects it on its own and buffers publishes meanwhile. Attempts publish
// asynchronously on it (batch.go: each with a reply subject of its own, the connection's
// one subscription taking the acks), so many are on the wire at once, while each
// attempt waits for its own ack or its timeout; at a high rate they go out in batches,
// at most one every flushEvery. The kind is Pipelined: the dispatcher keeps an
// endpoint's whole burst limit in flight, and the dispatcher's concurrency bounds the
// publishes awaiting an ack. A token goes in the password's place:
// tls://:TOKEN@host:4222/subject.
//
// TLS is spelled tls://, as nats.go and the NATS CLI spell it: the client requires
// TLS, which NATS negotiates on the server's port after its INFO (there is no separate
// TLS port), and verifies the server's certificate against the system roots or the
// endpoint's CAs. A nats:// URL is plaintext unless the server demands TLS, so it is
// refused without --insecure-targets.
package natsdest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/consign-dev/consign/internal/destination"
)

// schemes are the URL schemes of NATS: plaintext, then TLS.
var schemes = []destination.Scheme{{Name: "nats", Port: "4222"}, {Name: "tls", Port: "4222", TLS: true}}

// Kind returns the NATS kind, for tls:// and nats:// URLs.
func Kind(cfg destination.BrokerConfig) (destination.Kind, *Sender) {
	s := New(cfg)
	return destination.Kind{Name: "NATS", Schemes: []string{"nats", "tls"}, Check: CheckURL, Sender: s, Pipelined: true}, s
}

// Sender publishes attempts to JetStream. Create it with New; Close closes its
// connections.
type Sender struct {
	cfg   destination.BrokerConfig
	conns *destination.Conns[*conn]

	// targets holds what each URL an attempt named says (parsed), so that an attempt
	// does not parse its URL again; emptied when it holds maxTargets.
	targets sync.Map // URL → parsed
	ntarget atomic.Int64
}

// maxTargets bounds Sender.targets: endpoints' URLs, and those their transformations
// set.
const maxTargets = 4096

type parsed struct {
	t   target
	err error
}

type conn struct {
	nc  *nats.Conn
	pub *publisher
}

// New returns a Sender.
func New(cfg destination.BrokerConfig) *Sender {
	s := &Sender{cfg: cfg.WithDefaults()}
	s.conns = destination.NewConns(s.dial, func(c *conn) {
		c.pub.close()
		c.nc.Close()
	})
	return s
}

// Close closes every connection.
func (s *Sender) Close() { s.conns.Close() }

// target is what an endpoint URL says.
type target struct {
	server  string // tls://host:port or nats://host:port, what the pool keys on with the credentials
	user    string
	pass    string
	subject string
	tls     *destination.ClientTLS // the endpoint's TLS settings, for tls://
	addr    string                 // server, user and password: ConnKey.Addr
}

func (t target) key() destination.ConnKey {
	return destination.ConnKey{Addr: t.addr, TLS: t.tls}
}

// CheckURL says what is wrong with a tls:// or nats:// endpoint URL, without the network.
func CheckURL(raw string, insecure bool) error {
	_, err := parse(raw, insecure)
	return err
}

func parse(raw string, insecure bool) (target, error) {
	u, scheme, err := destination.ParseBrokerURL(raw, insecure, schemes...)
	if err != nil {
		return target{}, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return target{}, errors.New("url takes no query: the subject is the path, as in tls://host:4222/orders.created")
	}
	subject, err := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), "/"))
	if err != nil {
		return target{}, errors.New("url path is not valid: " + err.Error())
	}
	if err := checkSubject(subject); err != nil {
		return target{}, err
	}
	t := target{server: scheme.Name + "://" + u.Host, subject: subject}
	if u.User != nil {
		t.user = u.User.Username()
		p, ok := u.User.Password()
		if !ok {
			return target{}, errors.New("url user information must be user:password, or :token for a token (tls://:TOKEN@host:4222/subject)")
		}
		t.pass = p
	}
	t.addr = t.server + "\x00" + t.user + "\x00" + t.pass
	return t, nil
}

// checkSubject says what is wrong with a subject to publish to.
func checkSubject(s string) error {
	if s == "" {
		return errors.New("url must name the subject to publish to as its path, as in tls://host:4222/orders.created")
	}
	if len(s) > 255 {
		return errors.New("url subject is longer than 255 characters")
	}
	for _, tok := range strings.Split(s, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("url subject %q has an empty token (two dots, or a dot at an end)", s)
		case tok == "*" || tok == ">":
			return fmt.Errorf("url subject %q has a wildcard; a message is published to one subject", s)
		case strings.ContainsAny(tok, " \t\r\n\x00/"):
			return fmt.Errorf("url subject %q holds a space, a control character or a slash", s)
		}
	}
	return nil
}

// request returns the target of an attempt: its URL's scheme judged by
// --insecure-targets (its hosts are the dial guard's), its TLS settings.
func (s *Sender) request(r destination.Request) (target, error) {
	v, ok := s.targets.Load(r.URL)
	if !ok {
		var p parsed
		if _, p.err = destination.CheckScheme(r.URL, s.cfg.InsecureTargets, schemes...); p.err == nil {
			p.t, p.err = parse(r.URL, true)
		}
		if s.ntarget.Add(1) > maxTargets {
			s.targets.Clear()
			s.ntarget.Store(1)
		}
		v, _ = s.targets.LoadOrStore(r.URL, p)
	}
	p := v.(parsed)
	if p.err == nil && strings.HasPrefix(p.t.server, "tls:") {
		p.t.tls = r.TLS
	}
	return p.t, p.err
}

// dial connects to a server; key is target.key.
func (s *Sender) dial(ctx context.Context, key destination.ConnKey) (*conn, error) {
	parts := strings.SplitN(key.Addr, "\x00", 3)
	server, user, pass := parts[0], parts[1], parts[2]
	opts := []nats.Option{
		nats.Name("consign"),
		// Every address goes through the dial guard: this server's and those its
		// cluster announces.
		nats.SetCustomDialer(s.cfg.Dialer()),
		nats.Timeout(s.cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
	}
	if strings.HasPrefix(server, "tls:") {
		// nats.go sets each server's name for verification.
		opts = append(opts, nats.Secure(s.cfg.TLSConfig(key.TLS)))
	}
	switch {
	case user == "" && pass != "":
		opts = append(opts, nats.Token(pass))
	case user != "":
		opts = append(opts, nats.UserInfo(user, pass))
	}
	nc, err := nats.Connect(server, opts...)
	if err != nil {
		return nil, err
	}
	pub, err := newPublisher(nc, sweepEvery(s.cfg.Timeout))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &conn{nc: nc, pub: pub}, nil
}

// sweepEvery is how often a connection fails the publishes whose ack is later than
// timeout: a tenth of it, between 10 ms and 250 ms.
func sweepEvery(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 10*time.Millisecond), 250*time.Millisecond)
}

// Send publishes r to the subject of its URL and waits for the stream's ack.
func (s *Sender) Send(ctx context.Context, r destination.Request) destination.Outcome {
	start, began := s.cfg.Now(), time.Now()
	t, err := s.request(r)
	if err != nil {
		return destination.Refused(start, err)
	}
	c, err := s.conns.GetWithin(ctx, t.key(), s.cfg.Timeout)
	if err != nil {
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "connect to "+t.server, err)
	}
	if c.nc.IsClosed() {
		s.conns.Drop(t.key(), c, same)
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "connect to "+t.server, nats.ErrConnectionClosed)
	}
	// One array holds every header's value (no allocation of its own when the message
	// has room for them, not one a header).
	m := &message{Msg: nats.Msg{Subject: t.subject, Data: r.Body, Header: make(nats.Header, len(r.Header)+1)}}
	msg := &m.Msg
	vals := m.values[:0]
	if len(r.Header)+1 > len(m.values) {
		vals = make([]string, 0, len(r.Header)+1)
	}
	set := func(k, v string) {
		vals = append(vals, v)
		msg.Header[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	destination.MessageHeaders(r.Header, set)
	if id := r.Header.Get("Webhook-Id"); id != "" {
		set("Nats-Msg-Id", id)
	}
	p, err := c.pub.publish(msg, began.Add(s.cfg.Timeout))
	if err != nil {
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.subject, describe(err, t.subject))
	}
	select {
	case a := <-p.done:
		switch {
		case errors.Is(a.err, context.DeadlineExceeded):
			return destination.Failed(ctx, start, began, s.cfg.Timeout, "waiting for the ack of "+t.subject, a.err)
		case a.err != nil:
			return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.subject, describe(a.err, t.subject))
		}
		ack := map[string]string{"stream": a.ack.Stream, "sequence": strconv.FormatUint(a.ack.Sequence, 10)}
		if a.ack.Duplicate {
			ack["duplicate"] = "true" // the stream already held this event: a resend
		}
		return destination.Acked(start, began, ack)
	case <-ctx.Done():
		c.pub.forget(p)
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "waiting for the ack of "+t.subject, ctx.Err())
	}
}

// message is a publish's message with room for its header values: one allocation for
// both (the values live as long as the message's headers).
type message struct {
	nats.Msg
	values [8]string // an attempt's own headers (shape, in internal/dispatch) and Nats-Msg-Id
}

// describe words the errors a user can act on.
func describe(err error, subject string) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse):
		return fmt.Errorf("no JetStream stream takes subject %s (create a stream whose subjects include it)", subject)
	}
	return err
}

func same(a, b *conn) bool { return a == b }
