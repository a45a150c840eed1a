// Package redisdest is the Redis Streams kind of destination: an endpoint URL
// redis://[user:password@]host:6379/<db>?stream=<name> appends each attempt to that
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
// client, so the endpoint's retry schedule is the only one.
package redisdest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consign-dev/consign/internal/destination"
)

// Kind returns the Redis kind, for redis:// URLs.
func Kind(cfg destination.BrokerConfig) (destination.Kind, *Sender) {
	s := New(cfg)
	return destination.Kind{Name: "Redis", Schemes: []string{"redis"}, Check: CheckURL, Sender: s}, s
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
	addr, user, pass string
	db               int
	stream           string
}

func (t target) key() string {
	return t.addr + "\x00" + strconv.Itoa(t.db) + "\x00" + t.user + "\x00" + t.pass
}

func (t target) display() string { return "redis://" + t.addr + "/" + strconv.Itoa(t.db) }

// CheckURL says what is wrong with a redis:// endpoint URL, without the network.
func CheckURL(raw string, insecure bool) error {
	_, err := parse(raw, insecure)
	return err
}

func parse(raw string, insecure bool) (target, error) {
	u, err := destination.ParseBrokerURL(raw, "redis", "6379", insecure)
	if err != nil {
		return target{}, err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return target{}, errors.New("url query is not valid: " + err.Error())
	}
	for k, v := range q {
		if k != "stream" {
			return target{}, fmt.Errorf("url query %q is not known: a redis:// URL takes stream", k)
		}
		if len(v) > 1 {
			return target{}, fmt.Errorf("url gives stream %d times; give it once", len(v))
		}
	}
	t := target{addr: u.Host, stream: q.Get("stream")}
	if t.stream == "" {
		return target{}, errors.New("url must name the stream to append to: redis://host:6379/0?stream=orders")
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

// dial returns a client for key (target.key); it connects on first use.
func (s *Sender) dial(_ context.Context, key string) (*redis.Client, error) {
	p := strings.SplitN(key, "\x00", 4)
	db, _ := strconv.Atoi(p[1])
	d := s.cfg.Dialer()
	return redis.NewClient(&redis.Options{
		Addr: p[0], DB: db, Username: p[2], Password: p[3],
		Dialer:          d.DialContext,
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
	t, err := parse(r.URL, true) // checked at creation; the dial guard judges the address
	if err != nil {
		return destination.Outcome{Class: destination.Failure, StartedAt: start, Err: err.Error()}
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
