package web

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
)

// tryResult is what "Run on a sample" shows under the transformation editor: the
// webhook the code made of the sample, that it cancelled it, or the error that would fail
// the delivery.
type tryResult struct {
	Sample    string // where the sample came from
	Error     string
	Cancelled bool
	Method    string
	URL       string
	Headers   []kv
	Payload   string // indented
}

// tryTransformation runs the form's transformation, as typed and not yet saved, on a
// sample event of the type chosen: the payload typed beside it, else the org's last
// event of that type, else a test payload. The endpoint's URL, method, headers and
// payload version are the form's (an endpoint being edited keeps its stored headers,
// which the form shows masked). With htmx it answers the result alone; without, the form
// again with the result under the editor.
func (s *Server) tryTransformation(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	f := readEndpointForm(r)
	var cur *consign.Endpoint
	e := &consign.Endpoint{OrgID: q.org.ID, URL: strings.TrimSpace(f.URL), Method: f.Method, Version: strings.TrimSpace(f.Version)}
	if id := r.PostFormValue("endpoint_id"); id != "" {
		var err error
		if cur, err = s.manage.Endpoint(ctx, q.org.ID, id); err != nil {
			return err
		}
		e.Headers = cur.Headers
	} else {
		var p formParser
		e.Headers = p.headers("headers", f.Headers)
	}
	if e.Method == "" {
		e.Method = http.MethodPost
	}
	res := &tryResult{}
	in := manage.TransformationTest{Type: strings.TrimSpace(f.SampleType), Code: strings.TrimSpace(f.Transformation)}
	switch payload := strings.TrimSpace(f.SamplePayload); {
	case in.Code == "":
		res.Error = "Write a transformation first: function handler(webhook) { … return webhook }."
	case in.Type == "" || consign.ValidTypeName(in.Type) != "":
		res.Error = "Choose the type of the sample event."
	case payload != "":
		if !json.Valid([]byte(payload)) {
			res.Error = "The sample payload is not valid JSON; leave it empty to use the last event of the type."
		}
		in.Payload, res.Sample = json.RawMessage(payload), "the payload typed above"
	default:
		evs, err := s.store.EventList(ctx, q.org.ID, store.EventFilter{Page: store.Page{Limit: 1}, Type: in.Type})
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			in.Payload, res.Sample = evs[0].Payload, "the last "+in.Type+" event, "+evs[0].ID+" ("+evs[0].CreatedAt.Format("2006-01-02 15:04:05")+" UTC)"
		} else {
			res.Sample = "a test payload: no " + in.Type + " event was published in this org yet"
		}
	}
	if res.Error == "" {
		out, err := s.manage.TryTransformation(ctx, e, in)
		switch {
		case err != nil:
			if consign.ErrorCode(err) == consign.EINTERNAL {
				return err
			}
			res.Error = consign.ErrorMessage(err)
		case !out.OK:
			res.Error = out.Error
		case out.Cancelled:
			res.Cancelled = true
		default:
			wh := out.Webhook
			res.Method, res.URL, res.Payload = wh.Method, wh.URL, indentJSON(wh.Payload)
			for k, v := range wh.Headers {
				res.Headers = append(res.Headers, kv{k, v})
			}
			slices.SortFunc(res.Headers, func(a, b kv) int { return strings.Compare(a.K, b.K) })
		}
	}
	if isHTMX(r) {
		s.renderFragment(w, r, q, "endpoint_form", "transformation_result", endpointFormPage{Try: res})
		return nil
	}
	return s.renderEndpointFormWith(w, r, q, http.StatusOK, cur, f, nil, res)
}
