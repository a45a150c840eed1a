package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/bizkey"
	"github.com/consign-dev/consign/internal/store"
)

// Paging of the deliveries and events lists. Filters the store cannot apply (topic
// patterns, a start time) are applied while reading pages of scanPage rows, at most
// scanBudget rows per page shown; the "older" link continues where the scan stopped.
const (
	rowsPerPage = 50
	scanPage    = 200
	scanBudget  = 5000
)

var deliveryStatuses = []string{
	consign.StatusPending, consign.StatusDelivering, consign.StatusSucceeded, consign.StatusFailed,
	consign.StatusPaused, consign.StatusSuperseded, consign.StatusCancelled,
}

// listFilter is the filter of the deliveries and events lists, as typed.
type listFilter struct {
	Endpoint, Status, Topic, Since, Until string
	// Key is a business key searched for (an order id, a PO number): the lists then read
	// through the store's key index.
	Key string
}

func readListFilter(r *http.Request) listFilter {
	v := r.URL.Query()
	return listFilter{Endpoint: v.Get("endpoint"), Status: v.Get("status"), Topic: strings.TrimSpace(v.Get("topic")),
		Since: v.Get("since"), Until: v.Get("until"), Key: strings.TrimSpace(v.Get("key"))}
}

// checkKey notes what is wrong with the business key searched for, if one is.
func (f listFilter) checkKey(fp *formParser) {
	if f.Key != "" {
		if msg := bizkey.ValidQuery(f.Key); msg != "" {
			fp.fail("key", msg)
		}
	}
}

// query writes the filter as URL parameters, with a cursor.
func (f listFilter) query(cursor string) string {
	v := url.Values{}
	for k, s := range map[string]string{"endpoint": f.Endpoint, "status": f.Status, "topic": f.Topic, "since": f.Since, "until": f.Until,
		"key": f.Key, "cursor": cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}

// idAt returns the smallest ID of a kind created at t: IDs lead with their creation
// time, so "IDs below idAt(t)" is "created before t".
func idAt(prefix string, t time.Time) string {
	id := consign.NewID(prefix, t)
	return id[:len(prefix)+10] + strings.Repeat("0", 16)
}

// matchTopic reports whether an event type passes a topic filter: a type name or a
// pattern such as "order.*".
func matchTopic(filter, typ string) bool {
	return filter == "" || filter == typ || (strings.ContainsRune(filter, '*') && consign.TopicMatches(filter, typ))
}

type deliveryRow struct {
	D        *consign.Delivery
	Endpoint string // the endpoint's URL, "" if it is gone
}

type deliveriesPage struct {
	F         listFilter
	Rows      []deliveryRow
	Next      string
	Scanned   int
	Errors    fieldErrors
	Endpoints []*consign.Endpoint
	Statuses  []string
	Topics    []string
}

// deliveries lists deliveries newest first, filtered by endpoint, status, event type
// (or pattern) and creation time.
func (s *Server) deliveries(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	f := readListFilter(r)
	p := deliveriesPage{F: f, Statuses: deliveryStatuses}
	eps, err := s.manage.Endpoints(ctx, q.org.ID, store.Page{Limit: 500})
	if err != nil {
		return err
	}
	p.Endpoints = eps
	urls := map[string]string{}
	for _, e := range eps {
		urls[e.ID] = e.URL
	}
	if p.Topics, err = s.typeNames(ctx); err != nil {
		return err
	}
	var fp formParser
	since, until := fp.time("since", f.Since), fp.time("until", f.Until)
	if f.Status != "" && !consign.ValidStatus(f.Status) {
		fp.fail("status", "is not a delivery status")
	}
	f.checkKey(&fp)
	if err := fp.err(); err != nil {
		p.Errors, _ = formErrors(err)
		s.render(w, r, q, http.StatusUnprocessableEntity, "deliveries", "Deliveries", p)
		return nil
	}
	cursor := r.URL.Query().Get("cursor")
	if cursor == "" && until != nil {
		cursor = idAt(consign.PrefixDelivery, *until)
	}
	sf := store.DeliveryFilter{EndpointID: f.Endpoint, Status: f.Status, Key: f.Key}
	next, scanned, err := scan(cursor, since,
		func(c string) ([]*consign.Delivery, error) {
			sf.Page = store.Page{Limit: scanPage, Cursor: c}
			return s.store.DeliveryList(ctx, q.org.ID, sf)
		},
		func(d *consign.Delivery) (string, time.Time) { return d.ID, d.CreatedAt },
		func(d *consign.Delivery) (bool, error) {
			if !matchTopic(f.Topic, d.EventType) {
				return false, nil
			}
			p.Rows = append(p.Rows, deliveryRow{D: d, Endpoint: urls[d.EndpointID]})
			return true, nil
		})
	if err != nil {
		return err
	}
	cursor, p.Scanned = next, scanned
	if cursor != "" {
		p.Next = orgURL(q.org.ID, "deliveries?"+f.query(cursor))
	}
	s.render(w, r, q, http.StatusOK, "deliveries", "Deliveries", p)
	return nil
}

// scan reads a list newest first, a page at a time from cursor, and offers each item
// to keep until keep has taken rowsPerPage items, an item is older than since, the list
// ends, or scanBudget items were read. It returns the cursor to go on from ("" when the
// list, or the time range, is exhausted) and how many items it read.
func scan[T any](cursor string, since *time.Time, fetch func(cursor string) ([]T, error),
	info func(T) (id string, created time.Time), keep func(T) (bool, error)) (next string, scanned int, err error) {
	kept := 0
	for scanned < scanBudget {
		items, err := fetch(cursor)
		if err != nil {
			return "", scanned, err
		}
		for _, it := range items {
			id, created := info(it)
			if since != nil && created.Before(*since) {
				return "", scanned, nil
			}
			scanned++
			cursor = id
			ok, err := keep(it)
			if err != nil {
				return "", scanned, err
			}
			if ok {
				if kept++; kept == rowsPerPage {
					return cursor, scanned, nil
				}
			}
		}
		if len(items) < scanPage {
			return "", scanned, nil
		}
	}
	return cursor, scanned, nil
}

// typeNames lists the catalog's type names, for topic filters.
func (s *Server) typeNames(ctx context.Context) ([]string, error) {
	ts, err := s.store.EventTypeList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out, nil
}

// attemptView is an attempt with the body of its request (the event as the endpoint
// receives it, the same bytes on every attempt).
type attemptView struct {
	A    *consign.Attempt
	Body string
}

type deliveryPage struct {
	D           *consign.Delivery
	Attempts    []attemptView // newest first
	Event       *consign.Event
	Endpoint    *consign.Endpoint // nil if it was deleted
	RequestBody string
	Live        bool // an attempt is due or in flight: the page refreshes its attempts
	CanRetry    bool
}

// delivery shows one delivery: its event, the request sent and every attempt with the
// receiver's answer. While the delivery is pending or in flight, htmx refreshes the
// attempts every two seconds (?fragment=attempts).
func (s *Server) delivery(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	d, err := s.store.DeliveryGet(ctx, q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	p := deliveryPage{D: d, Live: d.Status == consign.StatusPending || d.Status == consign.StatusDelivering}
	p.CanRetry = !p.Live
	if p.Event, err = s.store.EventGet(ctx, q.org.ID, d.EventID); err != nil && consign.ErrorCode(err) != consign.ENOTFOUND {
		return err
	}
	if p.Endpoint, err = s.manage.Endpoint(ctx, q.org.ID, d.EndpointID); err != nil && consign.ErrorCode(err) != consign.ENOTFOUND {
		return err
	}
	p.RequestBody = requestBody(p.Event, p.Endpoint)
	for i := len(d.Attempts) - 1; i >= 0; i-- {
		p.Attempts = append(p.Attempts, attemptView{A: &d.Attempts[i], Body: p.RequestBody})
	}
	if isHTMX(r) && r.URL.Query().Get("fragment") == "attempts" {
		s.renderFragment(w, r, q, "delivery", "attempts", p)
		return nil
	}
	s.render(w, r, q, http.StatusOK, "delivery", "Delivery "+d.ID, p)
	return nil
}

// requestBody is what an endpoint receives for an event: the envelope, or the raw
// payload for endpoints that take it raw; "" when the event is gone.
func requestBody(e *consign.Event, ep *consign.Endpoint) string {
	if e == nil {
		return ""
	}
	if ep != nil && ep.PayloadFormat == consign.FormatRaw {
		return string(e.Payload)
	}
	return string(envelope(e))
}

// envelope is the body an envelope-format endpoint receives: the same bytes the
// dispatcher sends ({"id","type","timestamp","data"}, the payload not re-encoded).
func envelope(e *consign.Event) []byte {
	ts := e.CreatedAt.UTC().Format(time.RFC3339Nano)
	b := make([]byte, 0, len(e.Payload)+len(e.ID)+len(e.Type)+len(ts)+48)
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, e.ID)
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, e.Type)
	b = append(b, `,"timestamp":"`...)
	b = append(b, ts...)
	b = append(b, `","data":`...)
	b = append(b, e.Payload...)
	return append(b, '}')
}

// retryDelivery sends a finished delivery (failed, succeeded…) again now, as POST
// …/deliveries/{id}/retry does.
func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	id := r.PathValue("id")
	back := orgURL(q.org.ID, "deliveries/"+id)
	if _, err := s.dispatch.Retry(ctx, q.org.ID, id); consign.ErrorCode(err) == consign.ECONFLICT {
		q.sess.addFlash("error", consign.ErrorMessage(err))
		redirect(w, r, back)
		return nil
	} else if err != nil {
		return err
	}
	q.sess.addFlash("ok", "Retry queued: the delivery is being sent again now.")
	redirect(w, r, back)
	return nil
}

type eventRow struct {
	E        *consign.Event
	Counts   []statusCount
	Total    int
	Delivery []*consign.Delivery
}

type statusCount struct {
	Status string
	N      int
}

type eventsPage struct {
	F       listFilter
	Rows    []eventRow
	Next    string
	Scanned int
	Errors  fieldErrors
	Topics  []string
}

// events lists events newest first, filtered by type (or pattern) and time, each with
// its deliveries' states.
func (s *Server) events(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	f := readListFilter(r)
	p := eventsPage{F: f}
	var err error
	if p.Topics, err = s.typeNames(ctx); err != nil {
		return err
	}
	var fp formParser
	since, until := fp.time("since", f.Since), fp.time("until", f.Until)
	f.checkKey(&fp)
	if err := fp.err(); err != nil {
		p.Errors, _ = formErrors(err)
		s.render(w, r, q, http.StatusUnprocessableEntity, "events", "Events", p)
		return nil
	}
	cursor := r.URL.Query().Get("cursor")
	if cursor == "" && until != nil {
		cursor = idAt(consign.PrefixEvent, *until)
	}
	ef := store.EventFilter{Key: f.Key}
	if !strings.ContainsRune(f.Topic, '*') {
		ef.Type = f.Topic // exact types are filtered by the store
	}
	next, scanned, err := scan(cursor, since,
		func(c string) ([]*consign.Event, error) {
			ef.Page = store.Page{Limit: scanPage, Cursor: c}
			return s.store.EventList(ctx, q.org.ID, ef)
		},
		func(e *consign.Event) (string, time.Time) { return e.ID, e.CreatedAt },
		func(e *consign.Event) (bool, error) {
			if !matchTopic(f.Topic, e.Type) {
				return false, nil
			}
			row, err := s.eventRow(ctx, q.org.ID, e)
			if err != nil {
				return false, err
			}
			p.Rows = append(p.Rows, row)
			return true, nil
		})
	if err != nil {
		return err
	}
	cursor, p.Scanned = next, scanned
	if cursor != "" {
		p.Next = orgURL(q.org.ID, "events?"+f.query(cursor))
	}
	s.render(w, r, q, http.StatusOK, "events", "Events", p)
	return nil
}

func (s *Server) eventRow(ctx context.Context, orgID string, e *consign.Event) (eventRow, error) {
	ds, err := s.store.DeliveryList(ctx, orgID, store.DeliveryFilter{EventID: e.ID, Page: store.Page{Limit: 1000}})
	if err != nil {
		return eventRow{}, err
	}
	row := eventRow{E: e, Total: len(ds), Delivery: ds}
	n := map[string]int{}
	for _, d := range ds {
		n[d.Status]++
	}
	for _, st := range deliveryStatuses {
		if n[st] > 0 {
			row.Counts = append(row.Counts, statusCount{st, n[st]})
		}
	}
	return row, nil
}

type eventPage struct {
	Row  eventRow
	URLs map[string]string
}

func (s *Server) event(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	e, err := s.store.EventGet(ctx, q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	row, err := s.eventRow(ctx, q.org.ID, e)
	if err != nil {
		return err
	}
	urls := map[string]string{}
	for _, d := range row.Delivery {
		if _, ok := urls[d.EndpointID]; ok {
			continue
		}
		if ep, err := s.manage.Endpoint(ctx, q.org.ID, d.EndpointID); err == nil {
			urls[d.EndpointID] = ep.URL
		} else if consign.ErrorCode(err) != consign.ENOTFOUND {
			return err
		}
	}
	s.render(w, r, q, http.StatusOK, "event", "Event "+e.ID, eventPage{Row: row, URLs: urls})
	return nil
}
