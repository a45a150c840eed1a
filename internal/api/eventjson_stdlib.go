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

// decodeEvent reads the body of a single-event publish; the route bounds the body. The
// payload is validated by Publish (verbatim is false).
func decodeEvent(r *http.Request, _ int64, _ payloadReader, in *ingest.EventInput) (verbatim bool, err error) {
	return false, decode(r, in)
}

// decodeBatch reads the body of a batch publish; the route bounds the body.
func decodeBatch(r *http.Request, _ int64, _ payloadReader) (*decodedBatch, error) {
	in := new(decodedBatch)
	if err := decode(r, &in.batchInput); err != nil {
		return nil, err
	}
	return in, nil
}

// decodedBatch is a batch as decodeBatch read it.
type decodedBatch struct {
	batchInput
	verbatim []bool // always empty: writeJSON compacts every payload
}

// release lets the batch go.
func (*decodedBatch) release() {}

// writeEvent writes one event.
func writeEvent(w http.ResponseWriter, status int, e *consign.Event, _ bool) error {
	return writeJSON(w, status, eventView(e))
}

// writeEvents writes the results' events as {"data": [...]}.
func writeEvents(w http.ResponseWriter, status int, res []ingest.Result, _ []bool) error {
	views := make([]event, len(res))
	for i, x := range res {
		views[i] = eventView(x.Event)
	}
	return writeJSON(w, status, map[string]any{"data": views})
}
