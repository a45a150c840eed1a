//go:build consign_stdlib

package api

import (
	"net/http"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/ingest"
)

// The publishing bodies through encoding/json, in builds tagged consign_stdlib: the
// standard path beside the one-pass codec of eventjson.go, which reads and writes the
// same JSON (docs/performance.md says what that one buys).

// decodeEvent reads the body of a single-event publish; the route bounds the body.
func decodeEvent(r *http.Request, _ int64, in *ingest.EventInput) error {
	return decode(r, in)
}

// decodeBatch reads the body of a batch publish; the route bounds the body.
func decodeBatch(r *http.Request, _ int64, in *batchInput) error {
	return decode(r, in)
}

// writeEvent writes one event.
func writeEvent(w http.ResponseWriter, status int, e *consign.Event) error {
	return writeJSON(w, status, eventView(e))
}

// writeEvents writes events as {"data": [...]}.
func writeEvents(w http.ResponseWriter, status int, events []*consign.Event) error {
	views := make([]event, len(events))
	for i, e := range events {
		views[i] = eventView(e)
	}
	return writeJSON(w, status, map[string]any{"data": views})
}
