// Package testlog gives tests a slog.Logger that writes warnings and errors to the test's
// log, and nothing once the test has finished (a late line would panic).
package testlog

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// New returns the logger; each line is prefixed with prefix and ": ". Call it before
// registering the cleanup that stops what logs, so that it stops logging after that.
func New(tb testing.TB, prefix string) *slog.Logger {
	w := &writer{tb: tb, prefix: prefix + ": "}
	tb.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type writer struct {
	mu     sync.Mutex
	tb     testing.TB
	prefix string
	done   bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *writer) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
