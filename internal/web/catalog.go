package web

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/consign-dev/consign"
)

// catalogRow is one event type of the catalog page.
type catalogRow struct {
	T      *consign.EventType
	Newest string // the newest version, "" when the type has none
}

// catalog lists the event types every org may subscribe to, with their newest version.
func (s *Server) catalog(w http.ResponseWriter, r *http.Request, q *req) error {
	ts, err := s.store.EventTypeList(r.Context())
	if err != nil {
		return err
	}
	rows := make([]catalogRow, len(ts))
	for i, t := range ts {
		rows[i] = catalogRow{T: t}
		if n := len(t.Versions); n > 0 {
			rows[i].Newest = t.Versions[n-1].Version
		}
	}
	s.render(w, r, q, http.StatusOK, "catalog", "Event types", rows)
	return nil
}

// versionView is a version as the type's page shows it, newest first.
type versionView struct {
	V      consign.EventTypeVersion
	Schema string // indented
}

type catalogTypePage struct {
	T        *consign.EventType
	Schema   string
	Versions []versionView
}

// catalogType shows an event type: its schema and its payload versions with their
// downgrades, newest first.
func (s *Server) catalogType(w http.ResponseWriter, r *http.Request, q *req) error {
	t, err := s.store.EventTypeGet(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	p := catalogTypePage{T: t, Schema: indentJSON(t.Schema)}
	for i := len(t.Versions) - 1; i >= 0; i-- {
		p.Versions = append(p.Versions, versionView{V: t.Versions[i], Schema: indentJSON(t.Versions[i].Schema)})
	}
	s.render(w, r, q, http.StatusOK, "catalog_type", t.Name, p)
	return nil
}

// indentJSON returns a JSON document indented for reading ("" for none).
func indentJSON(doc json.RawMessage) string {
	if len(doc) == 0 {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, doc, "", "  ") != nil {
		return string(doc)
	}
	return b.String()
}
