package manage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/transform"
)

// TransformationTest is the body of POST …/endpoints/{id}/transformation/test: an event
// to run the endpoint's transformation on, or Code to try instead of the stored one.
type TransformationTest struct {
	// Type is the event type; default consign.test.
	Type string `json:"type"`
	// Payload is the event's payload; default a sample object.
	Payload json.RawMessage `json:"payload"`
	// Code, when set, is run instead of the endpoint's transformation (to try a change
	// before saving it).
	Code string `json:"code,omitempty"`
}

// TransformationResult is what a transformation made of a test event: the webhook as it
// would be sent, cancelled, or the error that would fail the delivery.
type TransformationResult struct {
	// OK is false when the run failed; Error then says why.
	OK        bool               `json:"ok"`
	Cancelled bool               `json:"cancelled"`
	Webhook   *transform.Webhook `json:"webhook,omitempty"`
	Error     string             `json:"error,omitempty"`
}

// TestTransformation runs an endpoint's transformation (or in.Code) on an event without
// sending anything, checking what it returns by the rules a delivery would meet
// (the endpoint URL policy included). Code that does not compile, or an endpoint with
// no transformation and no code given, is a field error; a run that fails is a result
// with OK false.
func (s *Service) TestTransformation(ctx context.Context, orgID, id string, in TransformationTest) (*TransformationResult, error) {
	e, err := s.Endpoint(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	return s.TryTransformation(ctx, e, in)
}

// TryTransformation is TestTransformation for an endpoint that may not be saved yet (the
// dashboard's form): e holds the URL, method, headers, version and transformation it
// would have.
func (s *Service) TryTransformation(ctx context.Context, e *consign.Endpoint, in TransformationTest) (*TransformationResult, error) {
	if e.Version != "" {
		if msg := consign.ValidVersion(e.Version); msg != "" {
			return nil, consign.Invalid("version", "%s", msg)
		}
	}
	var err error
	if in.Type == "" {
		in.Type = consign.TypeTest
	} else if msg := consign.ValidTypeName(in.Type); msg != "" {
		return nil, consign.Invalid("type", "%s", msg)
	}
	if len(in.Payload) == 0 {
		in.Payload = json.RawMessage(`{"test":true,"message":"This is a test event from Consign."}`)
	} else if !json.Valid(in.Payload) {
		return nil, consign.Invalid("payload", "is not valid JSON")
	}
	code := in.Code
	if code == "" {
		code = e.Transformation
	}
	if code == "" {
		return nil, consign.Invalid("code", "the endpoint has no transformation: give the code to try, or set the endpoint's transformation")
	}
	script, err := transform.Compile(code)
	if err != nil {
		return nil, consign.Invalid("code", "%s", err.Error())
	}
	// A pinned endpoint's transformation sees the payload in its version, as a delivery's
	// does: the payload given is taken to be in the type's newest version.
	if e.Version != "" {
		var failed string
		if in.Payload, failed, err = s.downgradeTo(ctx, in.Type, e.Version, in.Payload); err != nil {
			return nil, err
		} else if failed != "" {
			return &TransformationResult{Error: failed}, nil
		}
	}
	out, err := script.Run(&transform.Webhook{Type: in.Type, Payload: in.Payload, URL: e.URL, Method: e.Method,
		Headers: e.Headers}, func(u string) error { return s.cfg.ValidateURL(u, s.cfg.InsecureTargets) })
	switch {
	case err != nil:
		return &TransformationResult{Error: err.Error()}, nil
	case out.Cancel:
		return &TransformationResult{OK: true, Cancelled: true}, nil
	}
	out.Headers = maskStored(out.Headers, e.Headers)
	return &TransformationResult{OK: true, Webhook: out}, nil
}

// maskStored masks the values of h that are, or come from, the endpoint's sealed
// header values (stored): those are never shown again, even through the code.
func maskStored(h, stored map[string]string) map[string]string {
	for k, v := range h {
		for sk, sv := range stored {
			if http.CanonicalHeaderKey(sk) == http.CanonicalHeaderKey(k) || (sv != "" && strings.Contains(v, sv)) {
				h[k] = consign.Mask(v)
				break
			}
		}
	}
	return h
}

// downgradeTo converts a payload in the newest version of type typ to its shape as of
// version pin, as the dispatcher's shape stage does. failed says why a downgrade failed
// (which version, what it did); err is a store error.
func (s *Service) downgradeTo(ctx context.Context, typ, pin string, payload json.RawMessage) (_ json.RawMessage, failed string, err error) {
	t, err := s.store.EventTypeGet(ctx, typ)
	if consign.ErrorCode(err) == consign.ENOTFOUND {
		return payload, "", nil
	} else if err != nil {
		return nil, "", err
	}
	for i := len(t.Versions) - 1; i >= 0 && t.Versions[i].Version > pin; i-- {
		v := t.Versions[i]
		script, err := transform.CompileDowngrade(v.Downgrade)
		if err == nil {
			payload, err = script.Downgrade(payload)
		}
		if err != nil {
			return nil, fmt.Sprintf("converting the payload to the endpoint's version %s failed at version %s: %v", pin, v.Version, err), nil
		}
	}
	return payload, "", nil
}
