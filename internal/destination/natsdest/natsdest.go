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
// asynchronously on it (PublishMsgAsync, at most maxPending awaiting their ack), so many
// are on the wire at once, while each attempt waits for its own ack or its timeout; at
// a high rate they go out in batches, at most one every flushEvery (batch.go). The kind
// is Pipelined: the dispatcher keeps an endpoint's whole burst limit in flight. A token
// goes in the password's place: tls://:TOKEN@host:4222/subject.
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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/consign-dev/consign/internal/destination"
)

// maxPending bounds the publishes on one connection awaiting their ack: past it a
// publish waits (up to the attempt's timeout) for a slot.
const maxPending = 4096

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
}

type conn struct {
	nc  *nats.Conn
	pub *batcher
}

// New returns a Sender.
func New(cfg destination.BrokerConfig) *Sender {
	s := &Sender{cfg: cfg.WithDefaults()}
	s.conns = destination.NewConns(s.dial, func(c *conn) { c.nc.Close() })
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
}

func (t target) key() destination.ConnKey {
	return destination.ConnKey{Addr: t.server + "\x00" + t.user + "\x00" + t.pass, TLS: t.tls}
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
	if _, err := destination.CheckScheme(r.URL, s.cfg.InsecureTargets, schemes...); err != nil {
		return target{}, err
	}
	t, err := parse(r.URL, true)
	if strings.HasPrefix(t.server, "tls:") {
		t.tls = r.TLS
	}
	return t, err
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
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(s.cfg.Timeout))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &conn{nc: nc, pub: newBatcher(js)}, nil
}

// Send publishes r to the subject of its URL and waits for the stream's ack.
func (s *Sender) Send(ctx context.Context, r destination.Request) destination.Outcome {
	start, began := s.cfg.Now(), time.Now()
	t, err := s.request(r)
	if err != nil {
		return destination.Refused(start, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	c, err := s.conns.Get(ctx, t.key())
	if err != nil {
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "connect to "+t.server, err)
	}
	if c.nc.IsClosed() {
		s.conns.Drop(t.key(), c, same)
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "connect to "+t.server, nats.ErrConnectionClosed)
	}
	msg := nats.NewMsg(t.subject)
	msg.Data = r.Body
	destination.MessageHeaders(r.Header, msg.Header.Set)
	opts := []jetstream.PublishOpt{jetstream.WithStallWait(s.cfg.Timeout)}
	if id := r.Header.Get("Webhook-Id"); id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	f, p, err := c.pub.publish(msg, opts)
	if p != nil {
		select {
		case r := <-p.done:
			f, err = r.f, r.err
		case <-ctx.Done():
			p.gone.Store(true)
			return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.subject, ctx.Err())
		}
	}
	if err != nil {
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.subject, describe(err, t.subject))
	}
	select {
	case ack := <-f.Ok():
		a := map[string]string{"stream": ack.Stream, "sequence": strconv.FormatUint(ack.Sequence, 10)}
		if ack.Duplicate {
			a["duplicate"] = "true" // the stream already held this event: a resend
		}
		return destination.Acked(start, began, a)
	case err := <-f.Err():
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.subject, describe(err, t.subject))
	case <-ctx.Done():
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "waiting for the ack of "+t.subject, ctx.Err())
	}
}

// describe words the errors a user can act on.
func describe(err error, subject string) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse):
		return fmt.Errorf("no JetStream stream takes subject %s (create a stream whose subjects include it)", subject)
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

func same(a, b *conn) bool { return a == b }
