package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/ingest"
)

// TestDecodeEventTooLarge: a publish body past the route's limit is refused with the
// limit's error, whichever codec reads it.
func TestDecodeEventTooLarge(t *testing.T) {
	t.Parallel()
	body := `{"type":"order.created","payload":{"note":"` + strings.Repeat("x", 100) + `"}}`
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 64)
	var in ingest.EventInput
	var mbe *http.MaxBytesError
	_, err := decodeEvent(r, 64, nil, &in)
	require.ErrorAs(t, err, &mbe)
}
