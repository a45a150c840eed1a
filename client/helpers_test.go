package client_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/client"
	"github.com/consign-dev/consign/internal/app"
)

// adminKey is the admin key of every test server; 40 characters.
const adminKey = "test-admin-key-q7Vx2mP9rT4wZ8bN3cF6hJ1sD"

const (
	waitFor = 10 * time.Second
	tick    = 10 * time.Millisecond
)

// server is a running Consign and an admin client of it.
type server struct {
	url string
	c   *client.Client
}

// start runs the real app on a free loopback port over a fresh data directory.
func start(tb testing.TB) *server {
	tb.Helper()
	a, err := app.Start(context.Background(), app.Config{
		Addr: "127.0.0.1:0", DataDir: tb.TempDir(), InsecureTargets: true, AdminKey: adminKey,
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, a.Close()) })
	return &server{url: a.URL(), c: client.New(a.URL(), adminKey)}
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an httptest server that records what it is sent and answers status.
type receiver struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    []received
}

func newReceiver(tb testing.TB) *receiver {
	tb.Helper()
	r := &receiver{}
	r.status.Store(http.StatusOK)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		w.WriteHeader(int(r.status.Load()))
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hooks" }

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// newOrg creates an org for a test.
func newOrg(tb testing.TB, c *client.Client, name string) *client.Org {
	tb.Helper()
	o, err := c.Orgs.Create(context.Background(), client.OrgInput{Name: name})
	require.NoError(tb, err)
	return o
}

// apiError returns err's *client.Error, failing the test when there is none.
func apiError(tb testing.TB, err error) *client.Error {
	tb.Helper()
	var e *client.Error
	require.ErrorAs(tb, err, &e)
	return e
}
