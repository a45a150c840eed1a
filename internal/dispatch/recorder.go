package dispatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/consign-dev/consign/internal/store"
)

// recorder writes outcomes in batches: whatever has queued while the previous
// transaction committed goes into the next one.
type recorder struct {
	store store.Store
	log   *slog.Logger
	in    chan *store.Outcome
	done  chan struct{}
}

func newRecorder(s store.Store, log *slog.Logger) *recorder {
	return &recorder{store: s, log: log, in: make(chan *store.Outcome, 4096), done: make(chan struct{})}
}

func (r *recorder) add(o *store.Outcome) { r.in <- o }

// close writes what is queued and stops.
func (r *recorder) close() {
	close(r.in)
	<-r.done
}

func (r *recorder) run() {
	defer close(r.done)
	const maxBatch = 1000
	for first := range r.in {
		batch := []*store.Outcome{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-r.in:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		r.write(batch)
	}
}

// write retries a failed batch a few times: losing an outcome would only mean a
// duplicate send after the lease ends, but the attempt log should be complete.
func (r *recorder) write(batch []*store.Outcome) {
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := r.store.DeliveriesRecord(ctx, batch)
		cancel()
		if err == nil {
			return
		}
		if try == 4 {
			r.log.Error("record delivery outcomes; leases will expire and the deliveries be sent again", "count", len(batch), "err", err)
			return
		}
		time.Sleep(time.Duration(50<<try) * time.Millisecond)
	}
}
