package guard

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/consign-dev/consign"
)

// budget counts the bytes of request bodies that requests in flight hold.
type budget struct {
	limit int64
	used  atomic.Int64
}

// take charges n bytes, or reports false (charging nothing) when they would go over.
func (b *budget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *budget) give(n int64) { b.used.Add(-n) }

// Held returns how many bytes of request bodies the requests in flight hold now.
func (g *Guard) Held() int64 { return g.budget.used.Load() }

// Bodies returns next with every request body read under the guard's limits: charged to
// the shared budget as its bytes arrive, and cut when it arrives too slowly. A read
// refused for either reason returns a *consign.Error (EUNAVAILABLE with RetryAfter, or
// ETIMEOUT), for the handler to answer as it answers any error.
func (g *Guard) Bodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		b := &body{ReadCloser: r.Body, g: g, rc: http.NewResponseController(w), start: time.Now()}
		b.setDeadline(b.start.Add(g.cfg.BodyTimeout))
		r.Body = b
		defer b.end()
		next.ServeHTTP(w, r)
	})
}

// body is a request body read under the guard: see Bodies.
type body struct {
	io.ReadCloser
	g        *Guard
	rc       *http.ResponseController
	start    time.Time
	deadline time.Time
	received int64 // bytes read, all charged to the budget
	err      error // the refusal, returned by every later read
}

// Read implements io.Reader.
func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if !b.g.budget.take(int64(n)) {
			b.g.refused(ReasonBodyBudget)
			b.err = &consign.Error{Code: consign.EUNAVAILABLE, RetryAfter: time.Second, Message: fmt.Sprintf(
				"the server is holding as many request bodies as it may (%s together): try again in a moment", size(b.g.cfg.BodyBudget))}
			return 0, b.err
		}
		b.received += int64(n)
		// Each BodyMinRate bytes received earn one more second; moved in steps of at
		// least a second, so a fast body does not set a deadline per read.
		if want := b.start.Add(b.g.cfg.BodyTimeout + time.Duration(b.received*int64(time.Second)/b.g.cfg.BodyMinRate)); want.Sub(b.deadline) >= time.Second {
			b.setDeadline(want)
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		// The whole body is in. net/http now reads the connection in the background to
		// notice a client that goes away; a deadline left in place would cancel a
		// handler that outlives it.
		b.setDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.g.refused(ReasonSlowBody)
		b.err = consign.Errorf(consign.ETIMEOUT,
			"the request body arrived too slowly: %d bytes in %s; a body must arrive within %s, and a longer one at %s a second or faster",
			b.received, time.Since(b.start).Round(100*time.Millisecond), b.g.cfg.BodyTimeout, size(b.g.cfg.BodyMinRate))
		return n, b.err
	}
	return n, err
}

func (b *body) setDeadline(t time.Time) {
	b.deadline = t
	// A ResponseWriter without a connection (tests' recorders) cannot take one: the
	// budget still applies.
	_ = b.rc.SetReadDeadline(t)
}

// end gives the body's bytes back to the budget when its request is over.
func (b *body) end() { b.g.budget.give(b.received) }

// size writes a byte count the way the settings are documented.
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
