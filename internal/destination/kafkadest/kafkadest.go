// Package kafkadest is the Kafka kind of destination: an endpoint URL
// kafka+tls://[user:password@]host:9093[,host:9093…]/<topic>[?sasl=<mechanism>]
// (kafka://, port 9092, for plaintext, with --insecure-targets) produces each attempt
// as a record to that topic, and the attempt succeeds when the record is written to all
// in-sync replicas (acks=all); the attempt's response records the partition and offset.
//
// kafka+tls:// connects to every broker with TLS, verifying its certificate against the
// system roots or the endpoint's CAs. Credentials authenticate with SASL, the mechanism
// named by the query, as Kafka names them: sasl=plain, sasl=scram-sha-256 or
// sasl=scram-sha-512 (there is no default: a broker refuses a wrong one, which is harder
// to tell apart from a wrong password).
//
// The record's key is the event's ordering_key (none without one), so Kafka's default
// partitioner keeps one key's events in one partition, in order; its value is the body;
// its headers are the request's with lower-case names (webhook-id, webhook-signature,
// the endpoint's own…).
//
// One franz-go client per list of seed brokers serves every endpoint that names them.
// It produces idempotently (the broker drops a batch the client sends twice after a lost
// reply) and batches concurrent records by partition on its own, so attempts in flight
// at once share produce requests while each waits for its own record's result.
package kafkadest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/sender"
)

// Schemes are the URL schemes of Kafka: plaintext, then TLS.
var Schemes = []destination.Scheme{{Name: "kafka", Port: "9092"}, {Name: "kafka+tls", Port: "9093", TLS: true}}

// Kind returns the Kafka kind, for kafka+tls:// and kafka:// URLs.
func Kind(cfg destination.BrokerConfig) (destination.Kind, *Sender) {
	s := New(cfg)
	return destination.Kind{Name: "Kafka", Schemes: []string{"kafka", "kafka+tls"}, Check: CheckURL, Sender: s}, s
}

// Sender produces attempts to Kafka. Create it with New; Close closes its clients.
type Sender struct {
	cfg     destination.BrokerConfig
	clients *destination.Conns[*client]
}

// client is a franz-go client, what its dial guard last refused and why its last dial
// failed: franz-go retries a failed dial until the record's timeout, and then reports
// the timeout alone. It does the same when the brokers refuse the SASL credentials, so
// a refusal (seen by the client's hooks as a connection is set up) ends the attempts
// waiting on the client at once, with the broker's reason.
type client struct {
	*kgo.Client
	blocked  atomic.Pointer[error]
	lastDial atomic.Pointer[error]
	refused  atomic.Pointer[refusal] // the attempts waiting now end when it is canceled
}

// refusal is canceled, with the reason as its cause, when the brokers refuse the
// client's credentials.
type refusal struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newRefusal() *refusal {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &refusal{ctx, cancel}
}

// refuse ends the attempts waiting on c with err, the reason the brokers refused its
// credentials; attempts after it wait on a refusal of their own.
func (c *client) refuse(err error) {
	c.refused.Swap(newRefusal()).cancel(err)
}

// ConnHook, given to a franz-go client (kgo.WithHooks), hears how each of its
// connections to a broker is set up — franz-go retries a failed one on its own and
// tells its caller no more than a timeout — and calls Done with nil when the connection
// is ready, else with why not, naming the broker: the dial's or TLS handshake's error, or
// an *AuthError when the broker refused the SASL credentials. Create it with
// NewConnHook.
type ConnHook struct {
	done func(err error)
	mu   sync.Mutex
	// closedInSASL holds the nodes whose connection was closed while a SaslAuthenticate
	// awaited its answer, until that connection's setup ends.
	closedInSASL map[int32]error
}

// NewConnHook returns a ConnHook that calls done.
func NewConnHook(done func(err error)) *ConnHook {
	return &ConnHook{done: done, closedInSASL: map[int32]error{}}
}

// AuthError is a broker's refusal of the SASL credentials.
type AuthError struct{ Err error }

func (e *AuthError) Error() string { return "SASL authentication failed: " + e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }

// OnBrokerConnect hears how a connection's setup (dial, TLS, SASL) ended.
func (h *ConnHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.mu.Lock()
	closed, inSASL := h.closedInSASL[meta.NodeID]
	delete(h.closedInSASL, meta.NodeID)
	h.mu.Unlock()
	var ke *kerr.Error
	switch {
	case err == nil:
		h.done(nil)
		return
	case errors.As(err, &ke) && (ke == kerr.SaslAuthenticationFailed || ke == kerr.IllegalSaslState || ke == kerr.UnsupportedSaslMechanism):
		// Kafka answers with SASL_AUTHENTICATION_FAILED and its reason.
		err = &AuthError{err}
	case inSASL:
		err = &AuthError{fmt.Errorf("the broker closed the connection instead of accepting the credentials (%w)", closed)}
	case strings.HasPrefix(err.Error(), "unable to dial: ") && errors.Unwrap(err) != nil:
		err = errors.Unwrap(err) // franz-go's words before the dialer's own
	}
	h.done(fmt.Errorf("connect to %s: %w", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), err))
}

// OnBrokerRead hears each response read: a SaslAuthenticate whose answer never came
// (kfake closes the connection on wrong credentials) is a refusal.
func (h *ConnHook) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == int16(kmsg.SASLAuthenticate) && err != nil {
		h.mu.Lock()
		h.closedInSASL[meta.NodeID] = err
		h.mu.Unlock()
	}
}

// New returns a Sender.
func New(cfg destination.BrokerConfig) *Sender {
	s := &Sender{cfg: cfg.WithDefaults()}
	s.clients = destination.NewConns(s.dial, func(c *client) { c.Close() })
	return s
}

// Close closes every client.
func (s *Sender) Close() { s.clients.Close() }

// target is what an endpoint URL says.
type target struct {
	Brokers
	topic string
	tls   *destination.ClientTLS // the endpoint's TLS settings, for kafka+tls://
}

func (t target) key() destination.ConnKey {
	return destination.ConnKey{Addr: strings.Join([]string{t.Scheme.Name, strings.Join(t.Seeds, ","), t.SASL, t.User, t.Pass}, "\x00"), TLS: t.tls}
}

// Brokers is how to reach a Kafka cluster, as a kafka+tls:// or kafka:// URL says it.
type Brokers struct {
	Scheme     destination.Scheme
	Seeds      []string // host:port, sorted, each once
	User, Pass string
	SASL       string // "", "plain", "scram-sha-256" or "scram-sha-512"
}

// String is the brokers' URL without credentials, for messages.
func (b Brokers) String() string { return b.Scheme.Name + "://" + strings.Join(b.Seeds, ",") }

// CheckURL says what is wrong with a kafka+tls:// or kafka:// endpoint URL, without the
// network.
func CheckURL(raw string, insecure bool) error {
	_, err := parse(raw, insecure)
	return err
}

func parse(raw string, insecure bool) (target, error) {
	b, path, err := ParseBrokers(raw, insecure)
	if err != nil {
		return target{}, err
	}
	topic, err := url.PathUnescape(path)
	if err != nil {
		return target{}, errors.New("url path is not valid: " + err.Error())
	}
	if err := checkTopic(topic); err != nil {
		return target{}, err
	}
	return target{Brokers: b, topic: topic}, nil
}

// ParseBrokers parses a kafka+tls:// or kafka:// URL (the scheme judged by insecure, as
// destination.CheckScheme does, and each broker by the target rules) into the brokers
// and the URL's path (escaped, without its leading slash). A broker source's "url" is
// such a URL without a path.
func ParseBrokers(raw string, insecure bool) (Brokers, string, error) {
	if raw == "" {
		return Brokers{}, "", errors.New("url is required")
	}
	if len(raw) > sender.MaxURLLength {
		return Brokers{}, "", errors.New("url is " + strconv.Itoa(len(raw)) + " characters long; the limit is " + strconv.Itoa(sender.MaxURLLength))
	}
	scheme, err := destination.CheckScheme(raw, insecure, Schemes...)
	if err != nil {
		return Brokers{}, "", err
	}
	b := Brokers{Scheme: scheme}
	rest := raw[len(scheme.Name)+len("://"):]
	if strings.IndexByte(rest, '#') >= 0 {
		return Brokers{}, "", errors.New("url must not contain a fragment (#...)")
	}
	rest, query, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		u, err := url.Parse("kafka://" + authority[:at+1] + "h")
		if err != nil || u.User == nil {
			return Brokers{}, "", errors.New("url user information must be user:password, percent-encoded")
		}
		b.User = u.User.Username()
		pass, ok := u.User.Password()
		if b.User == "" || !ok || strings.ContainsRune(b.User+pass, 0) {
			return Brokers{}, "", errors.New("url user information must be user:password, for SASL")
		}
		b.Pass, authority = pass, authority[at+1:]
	}
	q, err := destination.BrokerQuery(query, scheme, "sasl")
	if err != nil {
		return Brokers{}, "", err
	}
	b.SASL = strings.ToLower(q.Get("sasl"))
	switch {
	case b.SASL != "" && b.SASL != "plain" && b.SASL != "scram-sha-256" && b.SASL != "scram-sha-512":
		return Brokers{}, "", fmt.Errorf("url sasl %q is not known: use plain, scram-sha-256 or scram-sha-512", q.Get("sasl"))
	case b.SASL != "" && b.User == "":
		return Brokers{}, "", errors.New("url names a SASL mechanism without credentials: kafka+tls://user:password@host:9093/topic?sasl=" + b.SASL)
	case b.SASL == "" && b.User != "":
		return Brokers{}, "", errors.New("url has credentials: name the SASL mechanism with ?sasl=plain, ?sasl=scram-sha-256 or ?sasl=scram-sha-512")
	}
	if authority == "" {
		return Brokers{}, "", errors.New("url must name at least one broker: " + scheme.Name + "://host:" + scheme.Port + "/topic")
	}
	for _, h := range strings.Split(authority, ",") {
		if h == "" {
			return Brokers{}, "", errors.New("url has an empty broker in its list (two commas, or one at an end)")
		}
		if !strings.Contains(strings.TrimPrefix(h, "["), "]:") && strings.Count(h, ":") != 1 {
			h += ":" + scheme.Port
		}
		if err := destination.CheckBrokerHost(h, insecure); err != nil {
			return Brokers{}, "", err
		}
		b.Seeds = append(b.Seeds, h)
	}
	slices.Sort(b.Seeds)
	b.Seeds = slices.Compact(b.Seeds)
	return b, path, nil
}

// Options returns the franz-go options that reach b: the seeds, SASL, and every dial
// through dial, with TLS (tlsConf, verified for each broker's host, the handshake within
// timeout) for kafka+tls://. failed, when not nil, hears why each dial failed.
func (b Brokers) Options(dial destination.DialFunc, tlsConf *tls.Config, timeout time.Duration, failed func(error)) []kgo.Opt {
	if b.Scheme.TLS {
		plain := dial
		dial = func(ctx context.Context, network, host string) (net.Conn, error) {
			return destination.DialTLS(ctx, plain, network, host, tlsConf, timeout)
		}
	}
	if failed != nil {
		inner := dial
		dial = func(ctx context.Context, network, host string) (net.Conn, error) {
			conn, err := inner(ctx, network, host)
			if err != nil {
				failed(err)
			}
			return conn, err
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(b.Seeds...), kgo.Dialer(dial), kgo.DialTimeout(timeout)}
	var m sasl.Mechanism
	switch b.SASL {
	case "plain":
		m = plain.Auth{User: b.User, Pass: b.Pass}.AsMechanism()
	case "scram-sha-256":
		m = scram.Auth{User: b.User, Pass: b.Pass}.AsSha256Mechanism()
	case "scram-sha-512":
		m = scram.Auth{User: b.User, Pass: b.Pass}.AsSha512Mechanism()
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

// checkTopic applies Kafka's rules for a topic name.
func checkTopic(s string) error {
	switch {
	case s == "":
		return errors.New("url must name the topic as its path: kafka://host:9092/orders")
	case len(s) > 249:
		return errors.New("url topic is longer than 249 characters")
	case s == "." || s == "..":
		return fmt.Errorf("url topic %q is not a valid topic name", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("url topic %q may hold only letters, digits, '.', '_' and '-'", s)
		}
	}
	return nil
}

// request returns the target of an attempt: its URL's scheme judged by
// --insecure-targets (its hosts are the dial guard's), its TLS settings.
func (s *Sender) request(r destination.Request) (target, error) {
	if _, err := destination.CheckScheme(r.URL, s.cfg.InsecureTargets, Schemes...); err != nil {
		return target{}, err
	}
	t, err := parse(r.URL, true)
	if t.Scheme.TLS {
		t.tls = r.TLS
	}
	return t, err
}

// dial returns a client for the brokers of key (target.key); it connects on first use.
func (s *Sender) dial(_ context.Context, key destination.ConnKey) (*client, error) {
	p := strings.SplitN(key.Addr, "\x00", 5)
	b := Brokers{Seeds: strings.Split(p[1], ","), SASL: p[2], User: p[3], Pass: p[4]}
	b.Scheme, _ = destination.CheckScheme(p[0]+"://", true, Schemes...)
	d := s.cfg.Dialer()
	c := &client{}
	c.refused.Store(newRefusal())
	// Every broker the cluster names goes through the dial guard, not just the seeds.
	guarded := func(ctx context.Context, network, host string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, host)
		if _, blocked := sender.BlockedReason(err); blocked {
			c.blocked.Store(&err)
		}
		return conn, err
	}
	opts := b.Options(guarded, s.cfg.TLSConfig(key.TLS), s.cfg.ConnectTimeout, func(err error) { c.lastDial.Store(&err) })
	if b.SASL != "" {
		opts = append(opts, kgo.WithHooks(NewConnHook(func(err error) {
			if auth := (*AuthError)(nil); errors.As(err, &auth) {
				c.refuse(auth)
			}
		})))
	}
	var err error
	c.Client, err = kgo.NewClient(append(opts,
		kgo.ClientID("consign"),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes are franz-go's default, and need this
		kgo.RecordDeliveryTimeout(s.cfg.Timeout),
		kgo.ProducerLinger(time.Millisecond),
		kgo.UnknownTopicRetries(2),
	)...)
	return c, err
}

// Send produces r to the topic of its URL and waits for its acknowledgement.
func (s *Sender) Send(ctx context.Context, r destination.Request) destination.Outcome {
	start, began := s.cfg.Now(), time.Now()
	t, err := s.request(r)
	if err != nil {
		return destination.Refused(start, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	c, err := s.clients.Get(ctx, t.key())
	if err != nil {
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "connect to "+t.String(), err)
	}
	rec := &kgo.Record{Topic: t.topic, Value: r.Body, Headers: make([]kgo.RecordHeader, 0, len(r.Header))}
	if r.Key != "" {
		rec.Key = []byte(r.Key)
	}
	destination.MessageHeaders(r.Header, func(k, v string) {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	})
	// The record is given up when the brokers refuse the credentials (it has not been
	// sent: franz-go fails a record on its context only before it is written).
	pctx, stop := ctx, func() bool { return false }
	if t.SASL != "" {
		var cancelProduce context.CancelCauseFunc
		pctx, cancelProduce = context.WithCancelCause(ctx)
		defer cancelProduce(nil)
		refused := c.refused.Load().ctx
		stop = context.AfterFunc(refused, func() { cancelProduce(context.Cause(refused)) })
	}
	err = c.ProduceSync(pctx, rec).FirstErr()
	stop()
	if err != nil {
		if b := c.blocked.Load(); b != nil {
			err = *b
		} else if cause := context.Cause(pctx); ctx.Err() == nil && cause != nil {
			err = cause
		} else if errors.Is(err, kerr.UnknownTopicOrPartition) {
			err = fmt.Errorf("the cluster has no topic %s (create it, or let the brokers create topics): %w", t.topic, err)
		} else if d := c.lastDial.Load(); d != nil {
			err = fmt.Errorf("%v; the last connection failed: %w", err, *d)
		}
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "produce to "+t.topic+" on "+t.String(), err)
	}
	c.blocked.Store(nil)
	c.lastDial.Store(nil)
	return destination.Acked(start, began, map[string]string{"topic": t.topic,
		"partition": strconv.FormatInt(int64(rec.Partition), 10), "offset": strconv.FormatInt(rec.Offset, 10)})
}
