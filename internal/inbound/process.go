package inbound

import (
	"context"
	"sync"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/store"
)

// IdempotencyKey is the idempotency key of the event a receipt becomes: publishing a
// receipt twice (after a crash between publishing and settling it) yields one event.
func IdempotencyKey(receiptID string) string { return "receipt:" + receiptID }

// publishTimeout bounds the publishing and settling of one receipt.
const publishTimeout = 30 * time.Second

// enqueue hands an accepted, stored receipt to the processor. When the queue is full
// the receipt waits in the store for the next sweep.
func (s *Service) enqueue(r *consign.Receipt) {
	if !s.claim(r.ID) {
		return
	}
	select {
	case s.queue <- r:
	default:
		s.release(r.ID)
	}
}

// enqueueWait hands a stored receipt to the processor, waiting while the queue is full
// (a broker consumer can wait; its messages wait in the broker). When ctx ends first the
// receipt waits in the store for the next sweep.
func (s *Service) enqueueWait(ctx context.Context, r *consign.Receipt) {
	if !s.claim(r.ID) {
		return
	}
	select {
	case s.queue <- r:
	case <-ctx.Done():
		s.release(r.ID)
	}
}

// claim marks a receipt as being worked on in this process; false if it is already.
func (s *Service) claim(id string) bool {
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	if s.inflight[id] {
		return false
	}
	s.inflight[id] = true
	return true
}

func (s *Service) release(id string) {
	s.inflightMu.Lock()
	delete(s.inflight, id)
	s.inflightMu.Unlock()
}

// process turns pending receipts into events until ctx ends: those handed over by
// Receive and the poller at once, and those found in the store at start and every Sweep.
// Receipts in flight when ctx ends are finished.
func (s *Service) process(ctx context.Context) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.cfg.Workers)
	settled := make(chan store.ReceiptSettlement, 4*s.cfg.Workers)
	settlerDone := make(chan struct{})
	go func() {
		defer close(settlerDone)
		s.settleLoop(settled)
	}()
	startBatch := func(rs []*consign.Receipt) bool {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			for _, r := range rs {
				s.release(r.ID)
			}
			return false
		}
		wg.Go(func() {
			defer func() { <-slots }()
			s.publishBatch(ctx, rs, settled)
		})
		return true
	}
	start := func(r *consign.Receipt) bool { return startBatch([]*consign.Receipt{r}) }
	sweep := time.NewTicker(s.cfg.Sweep)
	defer sweep.Stop()
	s.sweep(ctx, start)
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			close(settled)
			<-settlerDone
			return
		case r := <-s.queue:
			// Whatever else is queued goes along, in batches of one org's receipts: a
			// broker source hands over hundreds at once.
			for _, b := range s.drainQueue(r) {
				if !startBatch(b) {
					break
				}
			}
		case <-sweep.C:
			s.sweep(ctx, start)
		}
	}
}

// publishBatchSize is the most receipts published as events in one call.
const publishBatchSize = 100

// drainQueue returns first and the receipts queued behind it (up to a few batches'
// worth), in batches of one org each.
func (s *Service) drainQueue(first *consign.Receipt) [][]*consign.Receipt {
	byOrg := map[string][]*consign.Receipt{first.OrgID: {first}}
	order := []string{first.OrgID}
	n := 1
drain:
	for n < 4*publishBatchSize {
		select {
		case r := <-s.queue:
			if _, ok := byOrg[r.OrgID]; !ok {
				order = append(order, r.OrgID)
			}
			byOrg[r.OrgID] = append(byOrg[r.OrgID], r)
			n++
		default:
			break drain
		}
	}
	var out [][]*consign.Receipt
	for _, org := range order {
		for rs := byOrg[org]; len(rs) > 0; {
			k := min(len(rs), publishBatchSize)
			out = append(out, rs[:k])
			rs = rs[k:]
		}
	}
	return out
}

// publishBatch makes receipts of one org events in one publish. When ingest refuses the
// batch for one receipt's sake, each is published on its own, so that only that one is
// rejected.
func (s *Service) publishBatch(ctx context.Context, rs []*consign.Receipt, settled chan<- store.ReceiptSettlement) {
	if len(rs) == 1 {
		s.publish(ctx, rs[0], settled)
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	in := make([]ingest.EventInput, len(rs))
	for i, r := range rs {
		in[i] = ingest.EventInput{Type: r.Topic, Payload: []byte(r.Body), IdempotencyKey: IdempotencyKey(r.ID)}
	}
	res, err := s.pub.Publish(pctx, rs[0].OrgID, in)
	switch code := consign.ErrorCode(err); code {
	case "":
		for i, r := range rs {
			settled <- store.ReceiptSettlement{ID: r.ID, EventID: res[i].Event.ID}
		}
	case consign.EINVALID, consign.EBADREQUEST, consign.ETOOLARGE, consign.ENOTFOUND:
		for _, r := range rs {
			s.publish(ctx, r, settled)
		}
	default:
		for _, r := range rs {
			s.release(r.ID)
		}
		if ctx.Err() == nil {
			s.log.Warn("publish receipts; they stay pending and are tried again", "receipts", len(rs), "err", err)
		}
	}
}

// sweep starts every pending receipt of the store that is not in flight here.
func (s *Service) sweep(ctx context.Context, start func(*consign.Receipt) bool) {
	after := ""
	for ctx.Err() == nil {
		rs, err := s.store.ReceiptsPending(ctx, after, 500)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("list pending receipts", "err", err)
			}
			return
		}
		for _, r := range rs {
			if s.claim(r.ID) && !start(r) {
				return
			}
		}
		if len(rs) < 500 {
			return
		}
		after = rs[len(rs)-1].ID
	}
}

// publish makes a receipt an event and queues its settlement. A refusal that will not
// change (schema, size, catalog) settles it as rejected; a passing failure leaves it
// pending for the next sweep. It finishes even when ctx ends meanwhile.
func (s *Service) publish(ctx context.Context, r *consign.Receipt, settled chan<- store.ReceiptSettlement) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	res, err := s.pub.Publish(pctx, r.OrgID, []ingest.EventInput{{
		Type: r.Topic, Payload: []byte(r.Body), IdempotencyKey: IdempotencyKey(r.ID),
	}})
	switch code := consign.ErrorCode(err); code {
	case "":
		settled <- store.ReceiptSettlement{ID: r.ID, EventID: res[0].Event.ID}
	case consign.EINVALID, consign.EBADREQUEST, consign.ETOOLARGE, consign.ENOTFOUND:
		settled <- store.ReceiptSettlement{ID: r.ID, Reason: "not turned into an event: " + consign.ErrorMessage(err)}
	default:
		s.release(r.ID)
		if ctx.Err() == nil {
			s.log.Warn("publish receipt; it stays pending and is tried again", "receipt", r.ID, "err", err)
		}
	}
}

// settleLoop writes settlements in batches: whatever has queued while the previous
// batch was written goes in one transaction.
func (s *Service) settleLoop(in <-chan store.ReceiptSettlement) {
	for first := range in {
		batch := []store.ReceiptSettlement{first}
	drain:
		for len(batch) < 1000 {
			select {
			case x, ok := <-in:
				if !ok {
					break drain
				}
				batch = append(batch, x)
			default:
				break drain
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		if err := s.store.ReceiptsSettle(ctx, batch); err != nil {
			// The receipts stay pending; the next sweep publishes them again, and their
			// idempotency keys return the events already made.
			s.log.Error("settle receipts", "count", len(batch), "err", err)
		}
		cancel()
		for _, x := range batch {
			s.release(x.ID)
		}
	}
}
