package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

// TestEmitAfterClose: an event offered while ingest shuts down is refused as unavailable,
// never left waiting. (The dispatcher's last outcomes can trip a failure policy, whose
// operational event arrives after ingest has closed; the app's shutdown waited for it
// forever.)
func TestEmitAfterClose(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(t.Context(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	svc := ingest.New(st, ingest.Config{})
	svc.Close()
	for range 200 {
		done := make(chan error, 1)
		go func() { done <- svc.Emit(context.Background(), "org_1", "consign.endpoint.disabled", map[string]any{}) }()
		select {
		case err := <-done:
			require.Equal(t, consign.EUNAVAILABLE, consign.ErrorCode(err), "%v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("Emit after Close is still waiting after 5 s")
		}
	}
}
