package api

import (
	"io"
	"net/http"
	"strings"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/store"
)

// sourceRoutes are the routes of inbound sources: their management under an org, and the
// public ingest URL, where the token in the path is the credential.
func (s *Server) sourceRoutes() []route {
	return []route{
		{"POST", "/v1/orgs/{org}/sources", orgMember, "create an inbound source (credentials shown once)", s.createSource, inbound.SourceInput{}, created(sourceReply{})},
		{"GET", "/v1/orgs/{org}/sources", orgMember, "list inbound sources", s.listSources, nil, list[sourceReply]{}},
		{"GET", "/v1/orgs/{org}/sources/{id}", orgMember, "get an inbound source", s.getSource, nil, sourceReply{}},
		{"PATCH", "/v1/orgs/{org}/sources/{id}", orgMember, "update an inbound source", s.updateSource, inbound.SourceInput{}, sourceReply{}},
		{"DELETE", "/v1/orgs/{org}/sources/{id}", orgMember, "delete an inbound source and its receipts", s.deleteSource, nil, nil},
		{"POST", "/v1/orgs/{org}/sources/{id}/rotate-token", orgMember, "give a source a new ingest URL; the old one stops working", s.rotateSourceToken, nil, sourceReply{}},
		{"GET", "/v1/orgs/{org}/sources/{id}/receipts", orgMember, "list a source's receipts", s.listReceipts, nil, list[receiptReply]{}},
		{"GET", "/v1/orgs/{org}/sources/{id}/receipts/{rid}", orgMember, "get a receipt", s.getReceipt, nil, receiptReply{}},
		{"POST", "/in/{token}", public, "receive a provider's webhook (the token is the credential)", s.receive, anyBody{}, receiveReply{}},
	}
}

// sourceReply is a source as the API shows it: with its public ingest URL.
type sourceReply struct {
	*consign.Source
	IngestURL string `json:"ingest_url"`
}

func (s *Server) sourceReply(r *http.Request, src *consign.Source) sourceReply {
	return sourceReply{Source: src, IngestURL: s.publicBase(r) + "/in/" + src.Token}
}

// publicBase is the base of URLs the outside world calls: the configured public URL, or
// the scheme and host the request came to.
func (s *Server) publicBase(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) createSource(w http.ResponseWriter, r *http.Request) error {
	var in inbound.SourceInput
	if err := decode(r, &in); err != nil {
		return err
	}
	src, err := s.inbound.CreateSource(r.Context(), r.PathValue("org"), &in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, s.sourceReply(r, src))
}

func (s *Server) listSources(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	srcs, err := s.inbound.Sources(r.Context(), r.PathValue("org"), p)
	if err != nil {
		return err
	}
	out := make([]sourceReply, len(srcs))
	for i, src := range srcs {
		out[i] = s.sourceReply(r, src)
	}
	return writeJSON(w, http.StatusOK, newList(out, p, func(x sourceReply) string { return x.ID }))
}

func (s *Server) getSource(w http.ResponseWriter, r *http.Request) error {
	src, err := s.inbound.Source(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.sourceReply(r, src))
}

func (s *Server) updateSource(w http.ResponseWriter, r *http.Request) error {
	src, err := s.inbound.UpdateSource(r.Context(), r.PathValue("org"), r.PathValue("id"),
		func(in *inbound.SourceInput) error { return decode(r, in) })
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.sourceReply(r, src))
}

func (s *Server) deleteSource(w http.ResponseWriter, r *http.Request) error {
	if err := s.inbound.DeleteSource(r.Context(), r.PathValue("org"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) rotateSourceToken(w http.ResponseWriter, r *http.Request) error {
	src, err := s.inbound.RotateToken(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.sourceReply(r, src))
}

// receiptReply is a receipt as the API shows it: absent keys and events are null.
type receiptReply struct {
	*consign.Receipt
	DedupeKey *string `json:"dedupe_key"`
	EventID   *string `json:"event_id"`
}

func receiptView(rc *consign.Receipt) receiptReply {
	v := receiptReply{Receipt: rc}
	if rc.DedupeKey != "" {
		v.DedupeKey = &rc.DedupeKey
	}
	if rc.EventID != "" {
		v.EventID = &rc.EventID
	}
	return v
}

func (s *Server) listReceipts(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.ReceiptFilter{Page: p, Via: q.Get("via"), Status: q.Get("status")}
	var v consign.Validation
	for name, dst := range map[string]**bool{"verified": &f.Verified, "duplicate": &f.Duplicate} {
		switch q.Get(name) {
		case "":
		case "true":
			*dst = new(true)
		case "false":
			*dst = new(false)
		default:
			v.Add(name, "must be true or false")
		}
	}
	switch f.Via {
	case "", consign.ViaWebhook, consign.ViaPoll, consign.FromNATS, consign.FromAMQP, consign.FromKafka:
	default:
		v.Add("via", "must be webhook, poll, nats, amqp or kafka")
	}
	switch f.Status {
	case "", consign.ReceiptPending, consign.ReceiptProcessed, consign.ReceiptDuplicate, consign.ReceiptRejected:
	default:
		v.Add("status", "must be pending, processed, duplicate or rejected")
	}
	if err := v.Err(); err != nil {
		return err
	}
	rs, err := s.inbound.Receipts(r.Context(), r.PathValue("org"), r.PathValue("id"), f)
	if err != nil {
		return err
	}
	out := make([]receiptReply, len(rs))
	for i, rc := range rs {
		out[i] = receiptView(rc)
	}
	return writeJSON(w, http.StatusOK, newList(out, p, func(x receiptReply) string { return x.ID }))
}

func (s *Server) getReceipt(w http.ResponseWriter, r *http.Request) error {
	rc, err := s.inbound.Receipt(r.Context(), r.PathValue("org"), r.PathValue("id"), r.PathValue("rid"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, receiptView(rc))
}

// receive is the public ingest URL. It answers 200 once the request is stored (accepted
// or a duplicate), and a problem otherwise: 401 failed verification, 413 too large, 422
// not JSON, 404 unknown URL.
func (s *Server) receive(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	rc, err := s.inbound.Receive(r.Context(), r.PathValue("token"), r.Header, body)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"id": rc.ID, "status": rc.Status, "duplicate": rc.Duplicate})
}
