package ingest_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

// BenchmarkClaimBesideIngest measures what a dispatcher's claim waits for while events
// are published flat out into the embedded store: eight publishers send requests of 250
// events of 1 KiB to one endpoint (written pending: no dispatcher takes them in memory),
// and each op claims up to 1,024 of them and records them sent, as the dispatcher drains a
// backlog. "shared" is ingest as the app builds it on SQLite (commits capped while claims
// wait for the writer), "unbounded" the same without the cap. Reported: claim-ms, the
// wall time of a claim with its wait for the writer; deliveries/s drained and events/s
// published over the same time; commit-events, the events per commit. ns/op is per claim.
func BenchmarkClaimBesideIngest(b *testing.B) {
	for _, tc := range []struct {
		name   string
		shared bool
	}{{"shared", true}, {"unbounded", false}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := b.Context()
			st, org, now := storeWithOrg(b)
			require.NoError(b, st.EventTypeInsert(ctx, &consign.EventType{Name: "order.created", CreatedAt: now, UpdatedAt: now}))
			ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, now), OrgID: org.ID,
				URL: "https://erp.example.com/hooks", Topics: []string{"order.*"}, Active: true, CreatedAt: now, UpdatedAt: now}}
			require.NoError(b, ep.Normalize())
			require.NoError(b, st.EndpointInsert(ctx, ep, nil))
			cfg := ingest.Config{}
			if tc.shared {
				cfg.Writer = st
			}
			commits := &countingStore{DB: st}
			svc := ingest.New(commits, cfg)
			b.Cleanup(svc.Close)

			payload := json.RawMessage(`{"order_id":1001,"note":"` + strings.Repeat("x", 1000) + `"}`)
			in := make([]ingest.EventInput, 250)
			for i := range in {
				in[i] = ingest.EventInput{Type: "order.created", Payload: payload}
			}
			pubCtx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for pubCtx.Err() == nil {
						if _, err := svc.Publish(pubCtx, org.ID, in); err != nil && pubCtx.Err() == nil {
							b.Error(err)
							return
						}
					}
				})
			}
			// A backlog to start from, so that every claim finds a buffer's worth.
			require.Eventually(b, func() bool {
				n, err := st.DeliveriesQueued(ctx, ep.ID, 4096)
				return err == nil && n >= 4096
			}, time.Minute, 10*time.Millisecond)

			headers := map[string]string{"Content-Type": "application/json"}
			var claimWait time.Duration
			drained := 0
			events0, commits0 := commits.get()
			began := time.Now()
			b.ResetTimer()
			for b.Loop() {
				at := time.Now()
				t0 := time.Now()
				res, err := st.DeliveriesClaim(ctx, store.ClaimParams{Now: at, LeaseUntil: at.Add(time.Minute),
					Quotas: []store.Quota{{EndpointID: ep.ID, Limit: 1024}}})
				claimWait += time.Since(t0)
				require.NoError(b, err)
				drained += len(res.Claims)
				outcomes := make([]*store.Outcome, len(res.Claims))
				for i, c := range res.Claims {
					outcomes[i] = &store.Outcome{DeliveryID: c.DeliveryID, EndpointID: c.EndpointID, Status: consign.StatusSucceeded, At: at,
						Attempt: &consign.Attempt{N: 1, StartedAt: at, DurationMS: 1,
							Request: consign.AttemptRequest{Method: "POST", URL: ep.URL, Headers: headers}, Response: &consign.AttemptResponse{Status: 204}}}
				}
				require.NoError(b, st.DeliveriesRecord(ctx, store.RecordParams{Outcomes: outcomes}))
			}
			elapsed := time.Since(began).Seconds()
			events, n := commits.get()
			stop()
			wg.Wait()
			b.ReportMetric(float64(claimWait.Milliseconds())/float64(b.N), "claim-ms")
			b.ReportMetric(float64(drained)/elapsed, "deliveries/s")
			b.ReportMetric(float64(events-events0)/elapsed, "events/s")
			if n > commits0 {
				b.ReportMetric(float64(events-events0)/float64(n-commits0), "commit-events")
			}
		})
	}
}

// countingStore counts the events ingest wrote and the commits that wrote them.
type countingStore struct {
	*sqlite.DB
	mu              sync.Mutex
	events, commits int
}

func (m *countingStore) EventsInsert(ctx context.Context, ws []*store.EventWrite) error {
	err := m.DB.EventsInsert(ctx, ws)
	if err == nil {
		m.mu.Lock()
		m.events += len(ws)
		m.commits++
		m.mu.Unlock()
	}
	return err
}

func (m *countingStore) get() (events, commits int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.events, m.commits
}
