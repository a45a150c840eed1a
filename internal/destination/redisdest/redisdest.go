// Package redisdest is the Redis Streams kind of destination: an endpoint URL
// rediss://[user:password@]host:6379/<db>?stream=<name> (redis:// for plaintext, with
// --insecure-targets) appends each attempt to that
// stream with XADD, and the attempt succeeds on Redis's reply, the new entry's id, which
// the attempt's response records.
//
// The entry's fields are the body (field "body") and the request's headers with
// lower-case names (webhook-id, webhook-timestamp, webhook-signature, content-type, the
// endpoint's own). XADD is not idempotent: a resend (a retry after a lost reply, a
// crash between the reply and its record) is a second entry with the same webhook-id,
// which consumers drop as an HTTP receiver does.
//
// One go-redis client (a pool of connections) per server, database and credentials
// serves every endpoint that names them; each attempt is one XADD, not retried by the
// client, so the endpoint's retry schedule is the only one. Over rediss:// every
// connection of the pool is TLS, the server's certificate verified against the system
// roots or the endpoint's CAs.
package redisdest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consign-dev/consign/internal/destination"
)

// schemes are the URL schemes of Redis: plaintext, then TLS.
var schemes = []destination.Scheme{{Name: "redis", Port: "6379"}, {Name: "rediss", Port: "6379", TLS: true}}

// Kind returns the Redis kind, for rediss:// and redis:// URLs.
func Kind(cfg destination.BrokerConfig) (destination.Kind, *Sender) {
	s := New(cfg)
	return destination.Kind{Name: "Redis", Schemes: []string{"redis", "rediss"}, Check: CheckURL, Sender: s}, s
}

// Sender appends attempts to Redis streams. Create it with New; Close closes its
// clients.
type Sender struct {
	cfg     destination.BrokerConfig
	clients *destination.Conns[*redis.Client]
}

// New returns a Sender.
func New(cfg destination.BrokerConfig) *Sender {
	s := &Sender{cfg: cfg.WithDefaults()}
	s.clients = destination.NewConns(s.dial, func(c *redis.Client) { _ = c.Close() })
	return s
}

// Close closes every client.
func (s *Sender) Close() { s.clients.Close() }

// target is what an endpoint URL says.
type target struct {
	scheme, addr, user, pass string
	db                       int
	stream                   string
	tls                      *destination.ClientTLS // the endpoint's TLS settings, for rediss://
}

func (t target) key() destination.ConnKey {
	return destination.ConnKey{Addr: t.scheme + "\x00" + t.addr + "\x00" + strconv.Itoa(t.db) + "\x00" + t.user + "\x00" + t.pass, TLS: t.tls}
}

func (t target) display() string { return t.scheme + "://" + t.addr + "/" + strconv.Itoa(t.db) }

// CheckURL says what is wrong with a rediss:// or redis:// endpoint URL, without the
// network.
func CheckURL(raw string, insecure bool) error {
	_, err := parse(raw, insecure)
	return err
}

func parse(raw string, insecure bool) (target, error) {
	u, scheme, err := destination.ParseBrokerURL(raw, insecure, schemes...)
	if err != nil {
		return target{}, err
	}
	q, err := destination.BrokerQuery(u.RawQuery, scheme, "stream")
	if err != nil {
		return target{}, err
	}
	t := target{scheme: scheme.Name, addr: u.Host, stream: q.Get("stream")}
	if t.stream == "" {
		return target{}, errors.New("url must name the stream to append to: rediss://host:6379/0?stream=orders")
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 || n > 15 {
			return target{}, fmt.Errorf("url path must be the database number (0 to 15), not %q", db)
		}
		t.db = n
	}
	if u.User != nil {
		t.user = u.User.Username()
		t.pass, _ = u.User.Password()
	}
	return t, nil
}

// request returns the target of an attempt: its URL's scheme judged by
// --insecure-targets (its hosts are the dial guard's), its TLS settings.
func (s *Sender) request(r destination.Request) (target, error) {
	if _, err := destination.CheckScheme(r.URL, s.cfg.InsecureTargets, schemes...); err != nil {
		return target{}, err
	}
	t, err := parse(r.URL, true)
	if t.scheme == "rediss" {
		t.tls = r.TLS
	}
	return t, err
}

// dial returns a client for key (target.key); it connects on first use.
func (s *Sender) dial(_ context.Context, key destination.ConnKey) (*redis.Client, error) {
	p := strings.SplitN(key.Addr, "\x00", 5)
	db, _ := strconv.Atoi(p[2])
	d := s.cfg.Dialer()
	dial := d.DialContext
	if p[0] == "rediss" {
		conf := s.cfg.TLSConfig(key.TLS)
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return destination.DialTLS(ctx, d.DialContext, network, addr, conf, s.cfg.ConnectTimeout)
		}
	}
	return redis.NewClient(&redis.Options{
		Addr: p[1], DB: db, Username: p[3], Password: p[4],
		Dialer:          dial,
		DialTimeout:     s.cfg.ConnectTimeout,
		ReadTimeout:     s.cfg.Timeout,
		WriteTimeout:    s.cfg.Timeout,
		MaxRetries:      -1, // one XADD per attempt: the endpoint's schedule retries
		DisableIdentity: true,
		ClientName:      "consign",
	}), nil
}

// Send appends r to the stream of its URL.
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
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "connect to "+t.display(), err)
	}
	values := make([]any, 0, 2+2*len(r.Header))
	values = append(values, "body", r.Body)
	destination.MessageHeaders(r.Header, func(k, v string) { values = append(values, k, v) })
	id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: t.stream, Values: values}).Result()
	if err != nil {
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "XADD "+t.stream+" on "+t.display(), err)
	}
	return destination.Acked(start, began, map[string]string{"stream": t.stream, "id": id})
}
