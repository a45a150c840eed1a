package guard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/guard"
)

// TestConfigValidate: defaults pass; each bad setting is named.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, guard.Config{}.WithDefaults().Validate())
	d := guard.Config{}.WithDefaults()
	require.Equal(t, int64(128<<20), d.BodyBudget)
	require.Equal(t, 10*time.Second, d.BodyTimeout)
	err := guard.Config{BodyBudget: -1, BodyTimeout: -time.Second, BodyMinRate: -1}.WithDefaults().Validate()
	for _, want := range []string{"BodyBudget is -1", "BodyTimeout is -1s", "BodyMinRate is -1"} {
		require.ErrorContains(t, err, want)
	}
}

// TestBudgetIsShared: concurrent requests together never hold more than the budget;
// the ones that would go over are refused with EUNAVAILABLE and a Retry-After, and all
// is given back when they end.
func TestBudgetIsShared(t *testing.T) {
	t.Parallel()
	const budget, requests, each = 64 << 10, 32, 8 << 10
	g := guard.New(guard.Config{BodyBudget: budget})
	var (
		mu            sync.Mutex
		peak, refused int
		release       = make(chan struct{})
		arrived, done sync.WaitGroup
	)
	h := g.Bodies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		mu.Lock()
		if err != nil {
			refused++
			require.Equal(t, consign.EUNAVAILABLE, consign.ErrorCode(err))
			e, _ := err.(*consign.Error)
			require.Positive(t, e.RetryAfter)
		}
		peak = max(peak, int(g.Held()))
		mu.Unlock()
		arrived.Done()
		<-release // hold the body's bytes until every request has read
	}))
	arrived.Add(requests)
	done.Add(requests)
	for range requests {
		go func() {
			defer done.Done()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", each))))
		}()
	}
	arrived.Wait()
	close(release)
	done.Wait()
	require.LessOrEqual(t, peak, budget)
	// At most budget/each bodies fit whole (fewer when refused ones held part of theirs).
	require.GreaterOrEqual(t, refused, requests-budget/each, "with %d bytes, at most %d bodies of %d fit", budget, budget/each, each)
	require.Zero(t, g.Held(), "every request gave its bytes back")
}
