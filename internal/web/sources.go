package web

import (
	"net/http"
	"strings"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/store"
)

// Inbound sources: a provider's webhooks come in at a source's ingest URL, are verified
// and deduplicated, and become events. The pages call inbound.Service (through Sources)
// exactly as the JSON API does.

var verifyTypes = []string{consign.VerifyNone, consign.VerifyHMACSHA256, consign.VerifyStandardWebhooks, consign.VerifyBasic, consign.VerifyHeaderToken}

// ingestURL is the public URL a provider posts to.
func (s *Server) ingestURL(r *http.Request, src *consign.Source) string {
	return s.publicBase(r) + "/in/" + src.Token
}

type sourceRow struct {
	S         *consign.Source
	IngestURL string
}

type sourcesPage struct {
	Available bool
	Rows      []sourceRow
	Next      string
}

func (s *Server) sourceList(w http.ResponseWriter, r *http.Request, q *req) error {
	p := sourcesPage{Available: s.sources != nil}
	if s.sources != nil {
		pg := store.Page{Limit: rowsPerPage, Cursor: r.URL.Query().Get("cursor")}
		srcs, err := s.sources.Sources(r.Context(), q.org.ID, pg)
		if err != nil {
			return err
		}
		for _, src := range srcs {
			p.Rows = append(p.Rows, sourceRow{S: src, IngestURL: s.ingestURL(r, src)})
		}
		if len(srcs) == pg.Limit {
			p.Next = orgURL(q.org.ID, "sources?cursor="+srcs[len(srcs)-1].ID)
		}
	}
	s.render(w, r, q, http.StatusOK, "sources", "Inbound sources", p)
	return nil
}

// needSources answers 404 when this build has no inbound sources.
func (s *Server) needSources() error {
	if s.sources == nil {
		return consign.Errorf(consign.ENOTFOUND, "inbound sources are not available in this build")
	}
	return nil
}

// sourceForm holds the create form's values as typed.
type sourceForm struct {
	Name, Topic                                   string
	VerifyType, Header, Encoding, Prefix, Secret  string
	Username, Password                            string
	DedupeHeader, DedupePointer                   string
	Poll                                          bool
	PollURL, PollInterval, PollCron, PollTimezone string
	PollItemsPointer, PollIDPointer, PollHeaders  string
}

type sourceFormPage struct {
	F           sourceForm
	Topics      []string
	VerifyTypes []string
	Errors      fieldErrors
}

func (s *Server) newSource(w http.ResponseWriter, r *http.Request, q *req) error {
	if err := s.needSources(); err != nil {
		return err
	}
	return s.renderSourceForm(w, r, q, http.StatusOK, sourceForm{Topic: "shipment.created", VerifyType: consign.VerifyHMACSHA256, Encoding: consign.EncodingHex, PollIDPointer: "/id"}, nil)
}

func (s *Server) renderSourceForm(w http.ResponseWriter, r *http.Request, q *req, status int, f sourceForm, errs fieldErrors) error {
	names, err := s.typeNames(r.Context())
	if err != nil {
		return err
	}
	var topics []string
	for _, n := range names {
		if !strings.HasPrefix(n, consign.OperationalPrefix) {
			topics = append(topics, n)
		}
	}
	s.render(w, r, q, status, "source_form", "New inbound source", sourceFormPage{F: f, Topics: topics, VerifyTypes: verifyTypes, Errors: errs})
	return nil
}

func readSourceForm(r *http.Request) sourceForm {
	v := r.PostForm
	return sourceForm{
		Name: v.Get("name"), Topic: v.Get("topic"), VerifyType: v.Get("verify_type"), Header: v.Get("verify_header"),
		Encoding: v.Get("verify_encoding"), Prefix: v.Get("verify_prefix"), Secret: v.Get("verify_secret"),
		Username: v.Get("verify_username"), Password: v.Get("verify_password"),
		DedupeHeader: v.Get("dedupe_header"), DedupePointer: v.Get("dedupe_pointer"),
		Poll: v.Get("poll") == "on", PollURL: v.Get("poll_url"), PollInterval: v.Get("poll_interval"), PollCron: v.Get("poll_cron"),
		PollTimezone: v.Get("poll_timezone"), PollItemsPointer: v.Get("poll_items_pointer"), PollIDPointer: v.Get("poll_id_pointer"),
		PollHeaders: v.Get("poll_headers"),
	}
}

// input turns the form into a SourceInput. Fields a scheme does not use are left out,
// so switching the scheme in the form does not trip "is not used by" errors.
func (f *sourceForm) input() (*inbound.SourceInput, error) {
	var p formParser
	in := &inbound.SourceInput{Name: f.Name, Topic: strings.TrimSpace(f.Topic)}
	v := consign.SourceVerify{Type: f.VerifyType}
	switch f.VerifyType {
	case consign.VerifyHMACSHA256:
		v.Header, v.Encoding, v.Prefix, v.Secret = f.Header, f.Encoding, f.Prefix, strings.TrimSpace(f.Secret)
	case consign.VerifyStandardWebhooks:
		v.Secret = strings.TrimSpace(f.Secret)
	case consign.VerifyBasic:
		v.Username, v.Password = strings.TrimSpace(f.Username), f.Password
	case consign.VerifyHeaderToken:
		v.Header, v.Secret = f.Header, strings.TrimSpace(f.Secret)
	}
	in.Verify.V = &v
	in.Dedupe.V = &consign.SourceDedupe{Header: strings.TrimSpace(f.DedupeHeader), JSONPointer: strings.TrimSpace(f.DedupePointer)}
	if f.Poll {
		in.Poll.V = &consign.SourcePoll{
			URL: strings.TrimSpace(f.PollURL), Interval: p.duration("poll.interval", f.PollInterval), Cron: strings.TrimSpace(f.PollCron),
			Timezone: strings.TrimSpace(f.PollTimezone), ItemsPointer: strings.TrimSpace(f.PollItemsPointer),
			IDPointer: strings.TrimSpace(f.PollIDPointer), Headers: p.headers("poll.headers", f.PollHeaders),
		}
	}
	return in, p.err()
}

// createSource creates a source and shows its credentials, this once, with its URL.
func (s *Server) createSource(w http.ResponseWriter, r *http.Request, q *req) error {
	if err := s.needSources(); err != nil {
		return err
	}
	f := readSourceForm(r)
	in, err := f.input()
	var src *consign.Source
	if err == nil {
		src, err = s.sources.CreateSource(r.Context(), q.org.ID, in)
	}
	if err != nil {
		if errs, ok := formErrors(err); ok {
			return s.renderSourceForm(w, r, q, http.StatusUnprocessableEntity, f, errs)
		}
		return err
	}
	return s.renderSource(w, r, q, http.StatusCreated, src, src.Verify)
}

type sourcePage struct {
	S         *consign.Source
	IngestURL string
	Shown     consign.SourceVerify // credentials shown once (on creation)
	Receipts  []*consign.Receipt
	F         receiptFilter
	Next      string
	Errors    fieldErrors
}

type receiptFilter struct{ Status, Verified, Duplicate, Via string }

func (s *Server) source(w http.ResponseWriter, r *http.Request, q *req) error {
	if err := s.needSources(); err != nil {
		return err
	}
	src, err := s.sources.Source(r.Context(), q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.renderSource(w, r, q, http.StatusOK, src, consign.SourceVerify{})
}

func (s *Server) renderSource(w http.ResponseWriter, r *http.Request, q *req, status int, src *consign.Source, shown consign.SourceVerify) error {
	qv := r.URL.Query()
	p := sourcePage{S: inbound.Redact(src), IngestURL: s.ingestURL(r, src), Shown: shown,
		F: receiptFilter{Status: qv.Get("status"), Verified: qv.Get("verified"), Duplicate: qv.Get("duplicate"), Via: qv.Get("via")}}
	if r.Method != http.MethodGet {
		p.F = receiptFilter{}
	}
	f := store.ReceiptFilter{Page: store.Page{Limit: rowsPerPage, Cursor: qv.Get("cursor")}, Status: p.F.Status, Via: p.F.Via}
	var fp formParser
	for _, b := range []struct {
		field, value string
		dst          **bool
	}{{"verified", p.F.Verified, &f.Verified}, {"duplicate", p.F.Duplicate, &f.Duplicate}} {
		switch b.value {
		case "":
		case "true", "false":
			v := b.value == "true"
			*b.dst = &v
		default:
			fp.fail(b.field, "must be true or false")
		}
	}
	switch f.Status {
	case "", consign.ReceiptPending, consign.ReceiptProcessed, consign.ReceiptDuplicate, consign.ReceiptRejected:
	default:
		fp.fail("status", "must be pending, processed, duplicate or rejected")
	}
	switch f.Via {
	case "", consign.ViaWebhook, consign.ViaPoll, consign.FromNATS, consign.FromAMQP, consign.FromKafka:
	default:
		fp.fail("via", "must be webhook, poll, nats, amqp or kafka")
	}
	if err := fp.err(); err != nil {
		p.Errors, _ = formErrors(err)
		status = http.StatusUnprocessableEntity
	} else {
		rs, err := s.sources.Receipts(r.Context(), q.org.ID, src.ID, f)
		if err != nil {
			return err
		}
		p.Receipts = rs
		if len(rs) == f.Limit {
			p.Next = orgURL(q.org.ID, "sources/"+src.ID+"?"+receiptQuery(p.F, rs[len(rs)-1].ID))
		}
	}
	s.render(w, r, q, status, "source", src.Name, p)
	return nil
}

func receiptQuery(f receiptFilter, cursor string) string {
	var parts []string
	for _, kv := range [][2]string{{"status", f.Status}, {"verified", f.Verified}, {"duplicate", f.Duplicate}, {"via", f.Via}, {"cursor", cursor}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	return strings.Join(parts, "&")
}

func (s *Server) rotateSourceToken(w http.ResponseWriter, r *http.Request, q *req) error {
	if err := s.needSources(); err != nil {
		return err
	}
	src, err := s.sources.RotateToken(r.Context(), q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	q.sess.addFlash("ok", "New ingest URL made; the old one no longer works. Give the provider the new one.")
	redirect(w, r, orgURL(q.org.ID, "sources/"+src.ID))
	return nil
}

func (s *Server) deleteSource(w http.ResponseWriter, r *http.Request, q *req) error {
	if err := s.needSources(); err != nil {
		return err
	}
	if r.PostFormValue("confirm") != "yes" {
		return consign.Invalid("confirm", "tick the box to confirm that the source and its receipts are deleted")
	}
	if err := s.sources.DeleteSource(r.Context(), q.org.ID, r.PathValue("id")); err != nil {
		return err
	}
	q.sess.addFlash("ok", "Source deleted; its ingest URL no longer works.")
	redirect(w, r, orgURL(q.org.ID, "sources"))
	return nil
}
