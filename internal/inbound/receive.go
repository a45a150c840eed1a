package inbound

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/consign-dev/consign"
)

// maxTokenLength bounds the token part of an ingest URL looked up in the store.
const maxTokenLength = 128

// Receive handles one request to a source's ingest URL: it verifies it, stores it as a
// receipt durably, and hands an accepted receipt on to become an event. It returns the
// receipt once it is on disk: pending (accepted) or duplicate. Otherwise the error says
// what to answer: ENOTFOUND (no such URL), ETOOLARGE, EUNAUTHORIZED (verification
// failed) or EINVALID (not JSON), the last three with the receipt stored as rejected.
func (s *Service) Receive(ctx context.Context, token string, h http.Header, body []byte) (*consign.Receipt, error) {
	r, err := s.receive(ctx, token, h, body)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Received(receiveResult(r, err))
	}
	return r, err
}

// receiveResult names the result of a Receive for metrics: accepted, duplicate,
// unverified, rejected (stored but not forwarded), or the error code (not_found,
// too_large, unavailable, …) when nothing was stored.
func receiveResult(r *consign.Receipt, err error) string {
	switch {
	case err == nil && r.Status == consign.ReceiptDuplicate:
		return "duplicate"
	case err == nil:
		return "accepted"
	case r != nil && !r.Verified:
		return "unverified"
	case r != nil:
		return "rejected"
	}
	return consign.ErrorCode(err)
}

func (s *Service) receive(ctx context.Context, token string, h http.Header, body []byte) (*consign.Receipt, error) {
	if token == "" || len(token) > maxTokenLength {
		return nil, noSource()
	}
	row, err := s.store.SourceByTokenHash(ctx, HashToken(token))
	if consign.ErrorCode(err) == consign.ENOTFOUND {
		return nil, noSource()
	} else if err != nil {
		return nil, unavailable(err)
	}
	src, err := s.open(row)
	if err != nil {
		return nil, err
	}
	if n, size := headerSize(h); n > s.cfg.MaxHeaders || size > s.cfg.MaxHeaderBytes {
		return nil, consign.Errorf(consign.ETOOLARGE, "request headers are too large: %d fields and %d bytes, at most %d fields and %d bytes",
			n, size, s.cfg.MaxHeaders, s.cfg.MaxHeaderBytes)
	}
	r, rerr := s.receiptOf(src, consign.ViaWebhook, h, body, "")
	if err := s.store.ReceiptsInsert(ctx, []*consign.Receipt{r}, false); err != nil {
		return nil, unavailable(err)
	}
	switch {
	case !r.Verified:
		s.announceFailure(src, r)
	case r.Status == consign.ReceiptPending:
		s.enqueue(r)
	}
	return r, rerr
}

// receiptOf judges one request to a source, or one message from its broker, and returns
// its receipt, not yet stored: rejected (unverified, or a body that cannot become an
// event) with the error a webhook is answered with, or pending. defaultKey is the dedupe
// key when the source names none (a broker message's id). The event type is taken from
// the source's type_pointer or type_header when the message has it, else its topic.
func (s *Service) receiptOf(src *consign.Source, via string, h http.Header, body []byte, defaultKey string) (*consign.Receipt, error) {
	now := s.now()
	r := &consign.Receipt{
		ID: consign.NewID(consign.PrefixReceipt, now), OrgID: src.OrgID, SourceID: src.ID, Via: via,
		Topic: src.Topic, Headers: receiptHeaders(h, &src.Verify), Body: string(body), ReceivedAt: now,
		Status: consign.ReceiptRejected,
	}
	if err := Verify(&src.Verify, h, body, s.cfg.Now()); err != nil {
		r.Reason = "verification failed: " + err.Error()
		return r, consign.Errorf(consign.EUNAUTHORIZED, "the request failed verification (%s); it was stored as receipt %s and not forwarded",
			err.Error(), r.ID)
	}
	r.Verified = true
	if reject := s.checkBody(body); reject != nil {
		r.Reason = reject.Message
		reject.Message += fmt.Sprintf("; it was stored as receipt %s and not forwarded", r.ID)
		return r, reject
	}
	r.Status = consign.ReceiptPending
	var notes []string
	if src.Dedupe.Header == "" && src.Dedupe.JSONPointer == "" {
		r.DedupeKey = defaultKey
	} else if r.DedupeKey, r.Reason = dedupeKey(&src.Dedupe, h, body); r.Reason != "" {
		notes = append(notes, r.Reason)
	}
	if typ, note := eventType(src, h, body); typ != "" {
		r.Topic = typ
	} else if note != "" {
		notes = append(notes, note)
	}
	r.Reason = strings.Join(notes, "; ")
	return r, nil
}

// eventType reads the event type a request or message carries (type_header or
// type_pointer); "" with a note when the source names a place and it holds none, so the
// source's topic is used.
func eventType(src *consign.Source, h http.Header, body []byte) (typ, note string) {
	switch {
	case src.TypeHeader != "":
		if typ = strings.TrimSpace(h.Get(src.TypeHeader)); typ == "" {
			return "", fmt.Sprintf("the %s header is missing or empty: the event type is the source's topic", src.TypeHeader)
		}
	case src.TypePointer != "":
		p, err := ParsePointer(src.TypePointer)
		if err != nil {
			return "", "the event type is the source's topic: " + err.Error()
		}
		v, ok := p.Lookup(body)
		if ok && json.Unmarshal(v, &typ) != nil {
			typ = ""
		}
		if typ = strings.TrimSpace(typ); typ == "" {
			return "", fmt.Sprintf("no string at %s in the body: the event type is the source's topic", src.TypePointer)
		}
	}
	return typ, ""
}

func noSource() error {
	return consign.Errorf(consign.ENOTFOUND, "no source has this ingest URL (if its token was rotated, use the new URL)")
}

// unavailable keeps a client-facing error as it is and turns anything else into a 503,
// so that the provider retries.
func unavailable(err error) error {
	if consign.ErrorCode(err) != consign.EINTERNAL {
		return err
	}
	return errors.Join(consign.Errorf(consign.EUNAVAILABLE, "the receipt could not be stored; nothing was accepted, retry"), err)
}

// checkBody says why a verified body cannot become an event, or nil.
func (s *Service) checkBody(body []byte) *consign.Error {
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return consign.Errorf(consign.EINVALID, "the body is empty; a source takes a JSON body, which becomes the event's payload")
	case len(body) > s.cfg.MaxPayload:
		return consign.Errorf(consign.ETOOLARGE, "the body is %d bytes; an event's payload may be at most %d", len(body), s.cfg.MaxPayload)
	case !json.Valid(body):
		return consign.Errorf(consign.EINVALID, "the body is not JSON (%s); a source takes a JSON body, which becomes the event's payload",
			jsonProblem(body))
	case bytes.Equal(trimmed, []byte("null")):
		return consign.Errorf(consign.EINVALID, "the body is JSON null; an event needs a payload")
	}
	return nil
}

// jsonProblem describes why body is not JSON.
func jsonProblem(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	}
	if err != nil {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "invalid"
}

// dedupeKey reads a request's dedupe key; the note says why there is none when one was
// expected (the receipt is accepted all the same: losing an event would be worse than a
// possible duplicate).
func dedupeKey(d *consign.SourceDedupe, h http.Header, body []byte) (key, note string) {
	switch {
	case d.Header != "":
		if key = NormalizeKey(h.Get(d.Header)); key == "" {
			return "", fmt.Sprintf("accepted without a dedupe key: the %s header is missing or empty", d.Header)
		}
	case d.JSONPointer != "":
		p, err := ParsePointer(d.JSONPointer)
		if err != nil {
			return "", "accepted without a dedupe key: " + err.Error()
		}
		v, ok := p.Lookup(body)
		if ok {
			key = KeyOf(v)
		}
		if key == "" {
			return "", fmt.Sprintf("accepted without a dedupe key: nothing at %s in the body", d.JSONPointer)
		}
	}
	return key, ""
}

// headerSize counts a request's header fields and their bytes.
func headerSize(h http.Header) (fields, size int) {
	for k, vs := range h {
		for _, v := range vs {
			fields++
			size += len(k) + len(v)
		}
	}
	return fields, size
}

// receiptHeaders is the header map stored with a receipt: one entry per header, values
// joined, credentials (and a header-token source's token header) redacted.
func receiptHeaders(h http.Header, v *consign.SourceVerify) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		if consign.SensitiveHeader(k) || (v.Type == consign.VerifyHeaderToken && strings.EqualFold(k, v.Header)) {
			out[k] = consign.Redacted
			continue
		}
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// announceFailure emits consign.source.verification_failed into the source's org, at
// most once per FailureEventEvery per source; the next announcement counts the failures
// left unannounced in between.
func (s *Service) announceFailure(src *consign.Source, r *consign.Receipt) {
	now := s.cfg.Now()
	s.failMu.Lock()
	st := s.fails[src.ID]
	if st == nil {
		st = &failState{}
		s.fails[src.ID] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < s.cfg.FailureEventEvery {
		st.suppressed++
		s.failMu.Unlock()
		return
	}
	suppressed := st.suppressed
	st.last, st.suppressed = now, 0
	s.failMu.Unlock()

	payload := map[string]any{
		"source_id": src.ID, "source_name": src.Name, "receipt_id": r.ID, "reason": r.Reason,
		"received_at": r.ReceivedAt, "unannounced_failures": suppressed,
	}
	s.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.pub.Emit(ctx, src.OrgID, consign.TypeSourceVerificationFailed, payload); err != nil {
			s.log.Warn("emit source verification failed", "source", src.ID, "err", err)
		}
	})
}
