package store_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/store"
)

func TestEventSharedBuildsOnce(t *testing.T) {
	t.Parallel()
	var s store.EventShared
	var builds atomic.Int32
	got := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			got[i] = s.Envelope(func() []byte {
				builds.Add(1)
				return []byte(`{"id":"evt_1"}`)
			})
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), builds.Load())
	for _, b := range got {
		require.Equal(t, `{"id":"evt_1"}`, string(b))
	}
}
