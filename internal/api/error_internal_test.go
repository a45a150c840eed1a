package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

// TestWriteErrorUnknownCode: an error whose code has no status (a code added without
// one) is answered 500, not with status 0, which WriteHeader refuses with a panic.
func TestWriteErrorUnknownCode(t *testing.T) {
	t.Parallel()
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := httptest.NewRecorder()
	s.writeError(w, httptest.NewRequest(http.MethodGet, "/v1/orgs", nil), &consign.Error{Code: "no_such_code", Message: "what went wrong"})
	require.Equal(t, http.StatusInternalServerError, w.Code)
	var p problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	require.Equal(t, problem{Type: "urn:consign:error:no_such_code", Title: "Internal Server Error", Status: 500, Detail: "what went wrong"}, p)
}
