package inbound

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/internal/store"
)

// pollLease is how long a claimed poll is held: longer than any poll may take, so a
// lease only runs out when its process died.
const pollLease = consign.MaxPollTimeout + time.Minute

// wakePoller makes the poller look at the store now (a schedule changed).
func (s *Service) wakePoller() {
	select {
	case s.pollWake <- struct{}{}:
	default:
	}
}

// pollLoop runs due polls until ctx ends, then waits for those running.
func (s *Service) pollLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			// Take every slot: each running poll gives its slot back when it ends.
			for range cap(s.pollSlots) {
				s.pollSlots <- struct{}{}
			}
			for range cap(s.pollSlots) {
				<-s.pollSlots
			}
			return
		case <-timer.C:
		case <-s.pollWake:
		}
		s.claimPolls(ctx)
		timer.Reset(s.pollWait(ctx))
	}
}

// claimPolls leases as many due polls as there are free slots and starts them.
func (s *Service) claimPolls(ctx context.Context) {
	free := cap(s.pollSlots) - len(s.pollSlots)
	if free <= 0 || ctx.Err() != nil {
		return
	}
	now := s.now()
	rows, err := s.store.SourcePollsClaim(ctx, now, now.Add(pollLease), free)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("claim due polls", "err", err)
		}
		return
	}
	for _, row := range rows {
		if !s.markPolling(row.ID) {
			// Still running here past its lease (it cannot be: the lease outlasts the
			// timeout); the run in progress records its outcome and ends the new lease.
			continue
		}
		s.pollSlots <- struct{}{}
		go func() {
			defer func() {
				s.unmarkPolling(row.ID)
				<-s.pollSlots
				s.wakePoller() // a slot is free
			}()
			s.runPoll(ctx, row)
		}()
	}
}

func (s *Service) markPolling(id string) bool {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	if s.polling[id] {
		return false
	}
	s.polling[id] = true
	return true
}

func (s *Service) unmarkPolling(id string) {
	s.pollMu.Lock()
	delete(s.polling, id)
	s.pollMu.Unlock()
}

// pollWait is how long to sleep before the next claim: until the earliest due poll, at
// most PollCheck.
func (s *Service) pollWait(ctx context.Context) time.Duration {
	if len(s.pollSlots) == cap(s.pollSlots) {
		return s.cfg.PollCheck // a finishing poll wakes the loop
	}
	next, err := s.store.SourcePollNextDue(ctx)
	if err != nil || next.IsZero() {
		return s.cfg.PollCheck
	}
	return min(max(next.Sub(s.cfg.Now()), time.Millisecond), s.cfg.PollCheck)
}

// runPoll runs one claimed poll and records its outcome and next run.
func (s *Service) runPoll(ctx context.Context, row *store.SourceRow) {
	started := s.now()
	res := store.PollResult{SourceID: row.ID, Version: row.Version, RanAt: started}
	var perr error
	src, err := s.open(row)
	if err == nil && src.Poll == nil {
		err = errors.New("the source no longer polls")
	}
	if err == nil {
		var synced *time.Time
		if row.PollStatus != nil {
			synced = row.PollStatus.SyncedUntil
		}
		w := pollWindow(src.Poll, synced, started)
		res.NewItems, perr = s.pollOnce(ctx, src, w)
		if perr == nil {
			res.SyncedUntil = w.until
		}
	} else {
		perr = err
	}
	now := s.now()
	var next time.Time
	if row.Poll != nil {
		if next, err = nextAfterRun(row.Poll, started, now); err != nil {
			perr = errors.Join(perr, err)
			next = now.Add(s.cfg.PollRetry)
		}
	}
	if perr != nil {
		res.Error = perr.Error()
		switch {
		case ctx.Err() != nil:
			next = now // cut short by a shutdown: run again at the next start
		case now.Add(s.cfg.PollRetry).Before(next):
			next = now.Add(s.cfg.PollRetry)
		}
		if ctx.Err() == nil {
			s.log.Warn("poll failed", "source", row.ID, "err", perr, "next", next)
		}
	}
	res.NextAt = next
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := s.store.SourcePollFinish(fctx, res); err != nil {
		s.log.Error("record poll outcome", "source", row.ID, "err", err)
	}
}

// window is the span of time one poll asks the provider about.
type window struct{ since, until time.Time }

// pollWindow is the window of a poll starting at now: from the end of the last
// successful poll's window less the overlap (the first poll: now − lookback) to now.
func pollWindow(p *consign.SourcePoll, synced *time.Time, now time.Time) window {
	lookback := time.Duration(p.Lookback)
	if lookback <= 0 {
		lookback = consign.DefaultPollLookback
	}
	w := window{since: now.Add(-lookback), until: now}
	if synced != nil {
		w.since = synced.Add(-time.Duration(p.Overlap))
	}
	if w.since.After(w.until) {
		w.since = w.until
	}
	return w
}

// pollOnce reads the provider's list for the window, page after page, and stores the
// items never received as receipts, which it hands on to become events. It returns how
// many it stored; an error means the window was not read whole.
func (s *Service) pollOnce(ctx context.Context, src *consign.Source, w window) (int, error) {
	p := src.Poll
	idp, err := ParsePointer(p.IDPointer)
	if err != nil {
		return 0, fmt.Errorf("id_pointer: %w", err)
	}
	maxPages := p.MaxPages
	if maxPages <= 0 {
		maxPages = consign.DefaultPollMaxPages
	}
	h := http.Header{"Accept": {"application/json"}, "User-Agent": {consign.UserAgent}}
	for k, v := range p.Headers {
		h.Set(k, consign.ExpandPollWindow(v, w.since, w.until, "", false))
	}
	pageURL := consign.ExpandPollWindow(p.URL, w.since, w.until, "", true)
	read := map[string]bool{}
	total := 0
	for page := 1; ; page++ {
		read[pageURL] = true
		items, body, err := s.fetchItems(ctx, p, pageURL, h)
		if err != nil {
			return total, err
		}
		n, err := s.storeItems(ctx, src, idp, items)
		total += n
		if err != nil {
			return total, err
		}
		next, err := nextPage(p, body, pageURL, w)
		switch {
		case err != nil:
			return total, err
		case next == "":
			return total, nil
		case page >= maxPages:
			return total, fmt.Errorf("stopped after %d pages (max_pages) with more to read: the next poll reads this window again", page)
		case read[next]:
			return total, fmt.Errorf("GET %s: the next page is %s, which this poll read already", pageURL, next)
		}
		if err := s.cfg.ValidateURL(next, s.cfg.InsecureTargets); err != nil {
			return total, fmt.Errorf("GET %s: next page %s: %w", pageURL, next, err)
		}
		pageURL = next
	}
}

// nextPage returns the URL of the page after the one at cur whose reply is body, or ""
// when there is none: the value at next_pointer is an absolute URL, a URL relative to
// cur, or a cursor for the poll URL's {cursor}.
func nextPage(p *consign.SourcePoll, body []byte, cur string, w window) (string, error) {
	if p.NextPointer == "" {
		return "", nil
	}
	np, err := ParsePointer(p.NextPointer)
	if err != nil {
		return "", fmt.Errorf("next_pointer: %w", err)
	}
	raw, ok := np.Lookup(body)
	if !ok {
		return "", nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("GET %s: next_pointer %q: %w", cur, p.NextPointer, err)
	}
	var next string
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		next = x
	case float64:
		next = string(bytes.TrimSpace(raw))
	default:
		return "", fmt.Errorf("GET %s: next_pointer %q is not a URL or a cursor (a string or a number) in the reply", cur, p.NextPointer)
	}
	if next == "" {
		return "", nil
	}
	if strings.Contains(p.URL, consign.PollCursor) {
		return consign.NormalizeURL(consign.ExpandPollWindow(p.URL, w.since, w.until, next, true)), nil
	}
	base, err := url.Parse(cur)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", cur, err)
	}
	ref, err := url.Parse(next)
	if err != nil {
		return "", fmt.Errorf("GET %s: the next page %q is not a URL (a cursor needs %s in the poll URL)", cur, next, consign.PollCursor)
	}
	return consign.NormalizeURL(base.ResolveReference(ref).String()), nil
}

// storeItems stores a page's items that were never received as pending receipts and
// hands them on. It returns how many it stored.
func (s *Service) storeItems(ctx context.Context, src *consign.Source, idp Pointer, items []json.RawMessage) (int, error) {
	now := s.now()
	rs := make([]*consign.Receipt, 0, len(items))
	noID := 0
	for _, item := range items {
		v, ok := idp.Lookup(item)
		key := ""
		if ok {
			key = KeyOf(v)
		}
		if key == "" {
			noID++
			continue
		}
		rs = append(rs, &consign.Receipt{
			ID: consign.NewID(consign.PrefixReceipt, now), OrgID: src.OrgID, SourceID: src.ID, Via: consign.ViaPoll,
			Status: consign.ReceiptPending, Topic: src.Topic, Verified: true, DedupeKey: key,
			Headers: map[string]string{}, Body: string(item), ReceivedAt: now,
		})
	}
	if len(rs) > 0 {
		if err := s.store.ReceiptsInsert(ctx, rs, true); err != nil {
			return 0, fmt.Errorf("store polled items: %w", err)
		}
	}
	n := 0
	for _, r := range rs {
		if r.Status == consign.ReceiptPending {
			s.enqueue(r)
			n++
		}
	}
	if noID > 0 {
		return n, fmt.Errorf("%d of %d items have no id at %s and were skipped", noID, len(items), src.Poll.IDPointer)
	}
	return n, nil
}

// fetchItems GETs one page and returns the items of the array at items_pointer, and the
// reply.
func (s *Service) fetchItems(ctx context.Context, p *consign.SourcePoll, pageURL string, h http.Header) ([]json.RawMessage, []byte, error) {
	timeout := time.Duration(p.Timeout)
	if timeout <= 0 {
		timeout = consign.DefaultPollTimeout
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := s.fetch.Send(tctx, sender.Request{Method: http.MethodGet, URL: pageURL, Header: h})
	switch {
	case out.Class != sender.Success && ctx.Err() == nil && errors.Is(tctx.Err(), context.DeadlineExceeded):
		return nil, nil, fmt.Errorf("GET %s: timeout after %s", pageURL, timeout)
	case out.Class != sender.Success:
		return nil, nil, fmt.Errorf("GET %s: %s", pageURL, out.Err)
	case out.Truncated:
		return nil, nil, fmt.Errorf("GET %s: the response is larger than the poll limit and was cut short", pageURL)
	case !json.Valid(out.Body):
		return nil, nil, fmt.Errorf("GET %s: the response is not JSON (%s)", pageURL, jsonProblem(out.Body))
	}
	ip, err := ParsePointer(p.ItemsPointer)
	if err != nil {
		return nil, nil, fmt.Errorf("items_pointer: %w", err)
	}
	list, ok := ip.Lookup(out.Body)
	if !ok {
		return nil, nil, fmt.Errorf("GET %s: the response has nothing at items_pointer %q", pageURL, p.ItemsPointer)
	}
	if t := bytes.TrimSpace(list); len(t) == 0 || t[0] != '[' {
		return nil, nil, fmt.Errorf("GET %s: items_pointer %q is not an array in the response", pageURL, p.ItemsPointer)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(list, &items); err != nil {
		return nil, nil, fmt.Errorf("GET %s: items: %w", pageURL, err)
	}
	return items, out.Body, nil
}
