package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/client"
)

type endpointsCmd struct {
	List               endpointsListCmd               `cmd:"" help:"List an org's endpoints, newest first."`
	Get                endpointsGetCmd                `cmd:"" help:"Show an endpoint."`
	Create             endpointsCreateCmd             `cmd:"" help:"Create an endpoint; its first secret is shown once."`
	Update             endpointsUpdateCmd             `cmd:"" help:"Change an endpoint; --active turns a deactivated one back on."`
	Delete             endpointsDeleteCmd             `cmd:"" help:"Delete an endpoint and its deliveries."`
	Test               endpointsTestCmd               `cmd:"" help:"Send a test event now and show the attempt."`
	TransformationTest endpointsTransformationTestCmd `cmd:"" name:"transformation-test" help:"Run the endpoint's transformation (or --code-file) on an event and show what would be sent; nothing is sent."`
	Recover            endpointsRecoverCmd            `cmd:"" help:"Send failed deliveries again, within the endpoint's limits."`
	Replay             endpointsReplayCmd             `cmd:"" help:"Deliver the past events the endpoint never had (a backfill), as a job."`
	Stats              endpointsStatsCmd              `cmd:"" help:"Deliveries by status, success rate and latency over a window."`
}

type endpointsListCmd struct {
	remote
	orgFlag
	pageFlags
}

func (c *endpointsListCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	page, err := s.Endpoints.List(env.ctx, c.Org, c.options())
	if err != nil {
		return s.fail(err)
	}
	return s.printList(page.NextCursor, func(w io.Writer) {
		t := newTable(w, "ID", "ACTIVE", "HEALTH", "TOPICS", "URL")
		for _, e := range page.Data {
			t.row(e.ID, e.Active, e.Health, e.Topics, e.URL)
		}
		t.flush()
	})
}

type endpointsGetCmd struct {
	remote
	orgFlag
	ID string `arg:"" help:"The endpoint's id."`
}

func (c *endpointsGetCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	e, err := s.Endpoints.Get(env.ctx, c.Org, c.ID)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showEndpoint(w, e) })
}

// endpointFlags are an endpoint's fields as flags; nil means not given. FromFile reads
// the same fields as JSON, and flags given override it.
type endpointFlags struct {
	URL                *string  `help:"Target URL: https:// and public, unless the server runs with --insecure-targets."`
	Topic              []string `help:"An event type, a prefix such as order.*, or * (repeat, or separate with commas)."`
	Description        *string  `help:"What the endpoint is for."`
	Method             *string  `help:"POST (default) or PUT."`
	Header             []string `sep:"none" help:"A header to send with every request, as name=value (repeat)."`
	RateLimit          *float64 `help:"Requests per second; 0 for no limit."`
	BurstLimit         *int     `help:"Requests in flight at once; 0 for no limit."`
	Ordering           *string  `help:"none, or key: events with the same ordering key are sent one after another."`
	Coalesce           *bool    `negatable:"" help:"Send only the newest of the waiting events with the same type and ordering key."`
	PayloadFormat      *string  `help:"envelope (default: id, type, timestamp, data) or raw (the payload as given)."`
	Active             *bool    `negatable:"" help:"Activate (--active) or deactivate (--no-active) the endpoint."`
	Filter             *string  `help:"Send only the events that pass these JSON rules over type, payload and ordering_key, such as '{\"payload\": {\"total\": {\"$gte\": 500}}}'; @FILE reads them from a file, null removes the filter."`
	TransformationFile *string  `help:"Read the endpoint's transformation, JavaScript defining function handler(webhook) { … return webhook }, from this file (- for standard input); an empty file removes it."`
	PayloadVersion     *string  `help:"Pin the payload version, a date YYYY-MM-DD: payloads of versioned event types arrive converted down to their shape as of that date; \"\" receives the newest."`
	authFlags
	signatureFlags
	tlsFlags
	FromFile string `help:"Read the endpoint's fields as JSON from this file (- for standard input); flags override them."`
}

// body merges the file and the flags into one JSON object and decodes it into v (an
// EndpointInput or an EndpointPatch), refusing unknown fields.
func (f *endpointFlags) body(env *runEnv, v any) error {
	obj := map[string]json.RawMessage{}
	if f.FromFile != "" {
		if err := readJSON(env, f.FromFile, &obj); err != nil {
			return err
		}
	}
	set := func(name string, value any) {
		b, _ := json.Marshal(value)
		obj[name] = b
	}
	if len(f.Header) > 0 {
		headers := map[string]string{}
		if raw, ok := obj["headers"]; ok {
			if err := json.Unmarshal(raw, &headers); err != nil {
				return codeError{2, fmt.Errorf("%s: headers: %w", f.FromFile, err)}
			}
		}
		for _, h := range f.Header {
			name, value, ok := strings.Cut(h, "=")
			if !ok || strings.TrimSpace(name) == "" {
				return codeError{2, fmt.Errorf("--header %q: want name=value", h)}
			}
			headers[strings.TrimSpace(name)] = value
		}
		set("headers", headers)
	}
	if len(f.Topic) > 0 {
		set("topics", f.Topic)
	}
	if f.Filter != nil {
		rules := []byte(*f.Filter)
		if file, ok := strings.CutPrefix(*f.Filter, "@"); ok {
			var err error
			if rules, err = readInput(env, file, 1<<20); err != nil {
				return err
			}
		}
		if !json.Valid(rules) {
			return codeError{2, fmt.Errorf("--filter: not valid JSON: %s", truncate(string(rules), 80))}
		}
		obj["filter"] = bytes.TrimSpace(rules)
	}
	if f.TransformationFile != nil {
		code, err := readInput(env, *f.TransformationFile, 1<<20)
		if err != nil {
			return err
		}
		set("transformation", strings.TrimSpace(string(code)))
	}
	for name, p := range map[string]any{"url": f.URL, "description": f.Description, "method": f.Method,
		"rate_limit": f.RateLimit, "burst_limit": f.BurstLimit, "ordering": f.Ordering, "coalesce": f.Coalesce,
		"payload_format": f.PayloadFormat, "active": f.Active, "version": f.PayloadVersion} {
		if !isNil(p) {
			set(name, p)
		}
	}
	if err := f.authFlags.merge(obj); err != nil {
		return err
	}
	if err := f.signatureFlags.merge(obj); err != nil {
		return err
	}
	if err := f.tlsFlags.merge(env, obj); err != nil {
		return err
	}
	b, _ := json.Marshal(obj)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return codeError{2, fmt.Errorf("endpoint: %w", err)}
	}
	return nil
}

func isNil(p any) bool {
	switch x := p.(type) {
	case *string:
		return x == nil
	case *float64:
		return x == nil
	case *int:
		return x == nil
	case *bool:
		return x == nil
	}
	return p == nil
}

type endpointsCreateCmd struct {
	remote
	orgFlag
	endpointFlags
	Secret string `help:"The first signing secret (whsec_…, or an ed25519 whsk_… key); default: generated."`
}

func (c *endpointsCreateCmd) Run(env *runEnv) error {
	var in client.EndpointInput
	if err := c.body(env, &in); err != nil {
		return err
	}
	if c.Secret != "" {
		in.Secret = c.Secret
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	e, err := s.Endpoints.Create(env.ctx, c.Org, in)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		showEndpoint(w, &e.Endpoint)
		switch {
		case e.Auth.Type == "token":
			// Nothing is signed: the receiver checks the Auth header (shown above).
			fmt.Fprintf(w, "\nRequests carry the header \"Auth: %s\" (give the token to the receiver).\n", e.Auth.Token)
		case e.PublicKey != "":
			fmt.Fprintf(w, "\nReceivers verify with this public key: %s\n", e.PublicKey)
		default:
			fmt.Fprintf(w, "\nSigning secret (shown this once; give it to the receiver): %s\n", e.Secret)
		}
	})
}

type endpointsUpdateCmd struct {
	remote
	orgFlag
	endpointFlags
	DiscardPaused bool   `help:"With --active: cancel the deliveries that waited while the endpoint was inactive instead of sending them."`
	NoTLS         bool   `name:"no-tls" help:"Remove the endpoint's client certificate, key and CAs (back to the system roots, no client certificate)." group:"TLS"`
	ID            string `arg:"" help:"The endpoint's id."`
}

func (c *endpointsUpdateCmd) Run(env *runEnv) error {
	var p client.EndpointPatch
	if err := c.body(env, &p); err != nil {
		return err
	}
	if c.DiscardPaused {
		p.DiscardPaused = true
	}
	if c.NoTLS {
		if c.tlsFlags.given() {
			return codeError{2, fmt.Errorf("--no-tls removes the TLS settings: give it without --client-cert, --client-key and --ca-file")}
		}
		p.TLS = &client.TLSInput{}
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	e, err := s.Endpoints.Update(env.ctx, c.Org, c.ID, p)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showEndpoint(w, e) })
}

type endpointsDeleteCmd struct {
	remote
	orgFlag
	ID string `arg:"" help:"The endpoint's id."`
}

func (c *endpointsDeleteCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	if err := s.Endpoints.Delete(env.ctx, c.Org, c.ID); err != nil {
		return s.fail(err)
	}
	return s.done("deleted %s", c.ID)
}

type endpointsTestCmd struct {
	remote
	orgFlag
	ID   string `arg:"" help:"The endpoint's id."`
	Type string `help:"The event type to send; default consign.test."`
	File string `help:"The payload, JSON, from this file (- for standard input); default a sample."`
}

func (c *endpointsTestCmd) Run(env *runEnv) error {
	in := client.TestInput{Type: c.Type}
	if c.File != "" {
		payload, err := readPayload(env, c.File)
		if err != nil {
			return err
		}
		in.Payload = payload
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	r, err := s.Endpoints.Test(env.ctx, c.Org, c.ID, in)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		pairs := []any{"delivery_id", r.DeliveryID, "event_id", r.EventID, "status", r.Status}
		if a := r.Attempt; a != nil {
			pairs = append(pairs, "duration", fmt.Sprintf("%dms", a.DurationMS))
			if a.Error != nil {
				pairs = append(pairs, "error", *a.Error)
			}
			if a.Response != nil {
				pairs = append(pairs, "response_status", a.Response.Status, "response_body", truncate(a.Response.Body, 200))
			}
		}
		fields(w, pairs...)
	})
}

type endpointsTransformationTestCmd struct {
	remote
	orgFlag
	ID       string `arg:"" help:"The endpoint's id."`
	Type     string `help:"The event's type; default consign.test."`
	File     string `help:"The event's payload, JSON, from this file (- for standard input); default a sample."`
	CodeFile string `help:"Run this JavaScript instead of the endpoint's transformation, to try a change before saving it (- for standard input)."`
}

func (c *endpointsTransformationTestCmd) Run(env *runEnv) error {
	in := client.TransformationTest{Type: c.Type}
	if c.File != "" && c.File == c.CodeFile {
		return codeError{2, fmt.Errorf("--file and --code-file cannot both read %s", c.File)}
	}
	if c.File != "" {
		payload, err := readPayload(env, c.File)
		if err != nil {
			return err
		}
		in.Payload = payload
	}
	if c.CodeFile != "" {
		code, err := readInput(env, c.CodeFile, 1<<20)
		if err != nil {
			return err
		}
		if in.Code = strings.TrimSpace(string(code)); in.Code == "" {
			return codeError{2, fmt.Errorf("--code-file %s is empty", c.CodeFile)}
		}
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	r, err := s.Endpoints.TestTransformation(env.ctx, c.Org, c.ID, in)
	if err != nil {
		return s.fail(err)
	}
	if err := s.print(func(w io.Writer) {
		switch {
		case !r.OK:
			fields(w, "ok", false, "error", r.Error)
		case r.Cancelled:
			fields(w, "ok", true, "cancelled", "true (webhook.cancel = true: nothing would be sent)")
		default:
			fields(w, "ok", true, "method", r.Webhook.Method, "url", r.Webhook.URL, "headers", r.Webhook.Headers,
				"payload", string(r.Webhook.Payload))
		}
	}); err != nil {
		return err
	}
	if !r.OK {
		return codeError{1, fmt.Errorf("the transformation failed: a delivery would fail with that error")}
	}
	return nil
}

type endpointsRecoverCmd struct {
	remote
	orgFlag
	ID     string   `arg:"" help:"The endpoint's id."`
	Since  string   `required:"" help:"From this time: RFC 3339, or a duration ago such as 24h or 3d."`
	Until  string   `help:"Up to this time: RFC 3339, or a duration ago."`
	Status []string `help:"Delivery states to send again (default failed)."`
	Type   []string `help:"Only events of these types."`
}

func (c *endpointsRecoverCmd) Run(env *runEnv) error {
	now := time.Now()
	since, err := parseSince(c.Since, now)
	if err != nil {
		return codeError{2, fmt.Errorf("--since %w", err)}
	}
	in := client.RecoverInput{Since: since, Status: c.Status, Types: c.Type}
	if c.Until != "" {
		until, err := parseSince(c.Until, now)
		if err != nil {
			return codeError{2, fmt.Errorf("--until %w", err)}
		}
		in.Until = &until
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	j, err := s.Endpoints.Recover(env.ctx, c.Org, c.ID, in)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { fields(w, "id", j.ID, "status", j.Status, "requeued", j.Requeued) })
}

type endpointsStatsCmd struct {
	remote
	orgFlag
	ID     string        `arg:"" help:"The endpoint's id."`
	Window time.Duration `default:"24h" help:"How far back to look."`
}

func (c *endpointsStatsCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	st, err := s.Endpoints.Stats(env.ctx, c.Org, c.ID, c.Window)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		pairs := []any{"endpoint_id", st.EndpointID, "window", st.Window, "since", st.Since,
			"attempts", st.Attempts, "succeeded", st.Succeeded, "failed", st.Failed, "filtered", st.Filtered}
		if st.SuccessRate != nil {
			pairs = append(pairs, "success_rate", fmt.Sprintf("%.1f%%", *st.SuccessRate*100))
		}
		if st.LatencyP50MS != nil && st.LatencyP99MS != nil {
			pairs = append(pairs, "latency_p50", fmt.Sprintf("%dms", *st.LatencyP50MS), "latency_p99", fmt.Sprintf("%dms", *st.LatencyP99MS))
		}
		for _, status := range []string{client.StatusPending, client.StatusDelivering, client.StatusSucceeded, client.StatusFailed,
			client.StatusPaused, client.StatusSuperseded, client.StatusCancelled} {
			if n := st.Deliveries[status]; n > 0 {
				pairs = append(pairs, "deliveries_"+status, n)
			}
		}
		fields(w, pairs...)
	})
}

func showEndpoint(w io.Writer, e *client.Endpoint) {
	pairs := []any{"id", e.ID, "url", e.URL, "description", e.Description, "topics", e.Topics, "method", e.Method,
		"headers", e.Headers, "payload_format", e.PayloadFormat, "auth", e.Auth.Type}
	a := e.Auth
	for _, kv := range []struct{ k, v string }{{"auth_token", a.Token}, {"auth_username", a.Username},
		{"auth_password", a.Password}, {"auth_token_url", a.TokenURL}, {"auth_client_id", a.ClientID},
		{"auth_client_secret", a.ClientSecret}, {"auth_scopes", strings.Join(a.Scopes, " ")},
		{"auth_audience", a.Audience}, {"auth_style", a.AuthStyle}} {
		if kv.v != "" {
			pairs = append(pairs, kv.k, kv.v) // credentials come masked from the server
		}
	}
	if sig := e.Signature; sig.Scheme == consign.SignatureHMACSHA256 {
		text := fmt.Sprintf("hmac-sha256 of the %s, %s, in %s", sig.Signed, sig.Encoding, sig.Header)
		if sig.Prefix != "" {
			text += " after " + sig.Prefix
		}
		if sig.TimestampHeader != "" {
			text += "; timestamp in " + sig.TimestampHeader
		}
		pairs = append(pairs, "signature", text)
	} else if sig.Scheme == consign.SignatureNone && a.Type != consign.AuthToken {
		pairs = append(pairs, "signature", sig.Scheme)
	}
	if t := e.TLS; t != nil {
		pairs = tlsPairs(pairs, "tls_", t.Subject, t.Issuer, t.NotAfter, t.CASubjects)
	}
	if len(e.SuccessStatuses) > 0 {
		pairs = append(pairs, "success_statuses", e.SuccessStatuses)
	}
	pairs = append(pairs, "rate_limit", e.RateLimit, "burst_limit", e.BurstLimit, "ordering", e.Ordering, "coalesce", e.Coalesce,
		"retry", retryText(e.Retry), "failure_policy", failureText(e.FailurePolicy),
		"active", e.Active, "health", e.Health)
	if e.ResponseReferencePointer != "" {
		pairs = append(pairs, "response_reference_pointer", e.ResponseReferencePointer)
	}
	if len(e.ResponseFields) > 0 {
		pairs = append(pairs, "response_fields", e.ResponseFields)
	}
	if len(e.Filter) > 0 {
		pairs = append(pairs, "filter", string(e.Filter))
	}
	if e.Version != "" {
		pairs = append(pairs, "version", e.Version+" (payloads converted down to it)")
	}
	if e.Transformation != "" {
		pairs = append(pairs, "transformation", fmt.Sprintf("%d bytes of JavaScript (--json shows it)", len(e.Transformation)))
	}
	if e.DisabledAt != nil {
		pairs = append(pairs, "disabled_at", e.DisabledAt, "disabled_reason", e.DisabledReason)
	}
	if e.ReactivatedAt != nil {
		pairs = append(pairs, "reactivated_at", e.ReactivatedAt)
	}
	pairs = append(pairs, "created_at", e.CreatedAt, "updated_at", e.UpdatedAt)
	fields(w, pairs...)
}

func retryText(r client.RetryPolicy) string {
	parts := make([]string, len(r.Schedule))
	for i, d := range r.Schedule {
		parts[i] = cell(d)
	}
	return strings.Join(parts, ",") + " until " + cell(r.MaxAge) + " old"
}

func failureText(f client.FailurePolicy) string {
	s := "disable after " + cell(f.DisableAfter) + " failing"
	if f.MaxFailures > 0 {
		s += fmt.Sprintf(", or after more than %d failures in %s", f.MaxFailures, cell(f.Window))
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

type secretsCmd struct {
	List   secretsListCmd   `cmd:"" help:"List an endpoint's secrets (not their values)."`
	Add    secretsAddCmd    `cmd:"" help:"Add a signing secret, active at once; its value is shown once."`
	Rotate secretsRotateCmd `cmd:"" help:"Add a new secret now; the others expire after the grace period."`
	Update secretsUpdateCmd `cmd:"" help:"Change when a secret stops signing (--expires-in, --expires-at or --no-expiry)."`
	Delete secretsDeleteCmd `cmd:"" help:"Delete a secret (not the last one that signs)."`
}

// endpointFlag selects the endpoint of secret commands.
type endpointFlag struct {
	Endpoint string `required:"" help:"The endpoint's id."`
}

type secretsListCmd struct {
	remote
	orgFlag
	endpointFlag
}

func (c *secretsListCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	secs, err := s.Secrets.List(env.ctx, c.Org, c.Endpoint)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		now := time.Now()
		t := newTable(w, "ID", "STATE", "CREATED", "EXPIRES", "PUBLIC KEY")
		for _, sec := range secs {
			state := "active"
			if !sec.ActiveAt(now) {
				state = "expired"
			}
			t.row(sec.ID, state, sec.CreatedAt, sec.ExpiresAt, sec.PublicKey)
		}
		t.flush()
	})
}

type secretsAddCmd struct {
	remote
	orgFlag
	endpointFlag
	Value     string `help:"The secret (whsec_…, or an ed25519 whsk_… key); default: generated."`
	ExpiresIn string `help:"Stop signing with it after this long, such as 720h or 30d."`
}

func (c *secretsAddCmd) Run(env *runEnv) error {
	in := client.SecretInput{Value: c.Value}
	if c.ExpiresIn != "" {
		d, err := consign.ParseDuration(c.ExpiresIn)
		if err != nil || d <= 0 {
			return codeError{2, fmt.Errorf("--expires-in %q: want a duration such as 720h or 30d", c.ExpiresIn)}
		}
		in.ExpiresAt = new(time.Now().Add(d))
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	sec, err := s.Secrets.Add(env.ctx, c.Org, c.Endpoint, in)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showSecret(w, sec) })
}

type secretsRotateCmd struct {
	remote
	orgFlag
	endpointFlag
	Grace *time.Duration `help:"How long the other secrets keep signing (default 24h; 0s: stop now)."`
	Value string         `help:"The new secret; default: generated."`
}

func (c *secretsRotateCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	sec, err := s.Secrets.Rotate(env.ctx, c.Org, c.Endpoint, client.RotateInput{Grace: c.Grace, Value: c.Value})
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showSecret(w, sec) })
}

type secretsUpdateCmd struct {
	remote
	orgFlag
	endpointFlag
	ID        string `arg:"" help:"The secret's id."`
	ExpiresIn string `xor:"expiry" help:"Stop signing after this long from now, such as 720h or 30d (0s: now)."`
	ExpiresAt string `xor:"expiry" help:"Stop signing at this time (RFC 3339)."`
	NoExpiry  bool   `xor:"expiry" help:"Sign until the secret is deleted."`
}

func (c *secretsUpdateCmd) Run(env *runEnv) error {
	var at *time.Time
	switch {
	case c.ExpiresIn != "":
		d, err := consign.ParseDuration(c.ExpiresIn)
		if err != nil || d < 0 {
			return codeError{2, fmt.Errorf("--expires-in %q: want a duration such as 720h or 30d", c.ExpiresIn)}
		}
		at = new(time.Now().Add(d))
	case c.ExpiresAt != "":
		t, err := time.Parse(time.RFC3339, c.ExpiresAt)
		if err != nil {
			return codeError{2, fmt.Errorf("--expires-at %q: want an RFC 3339 time such as 2027-06-01T00:00:00Z", c.ExpiresAt)}
		}
		at = &t
	case !c.NoExpiry:
		return codeError{2, fmt.Errorf("say when the secret stops signing: --expires-in, --expires-at or --no-expiry")}
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	sec, err := s.Secrets.SetExpiry(env.ctx, c.Org, c.Endpoint, c.ID, at)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		fields(w, "id", sec.ID, "endpoint_id", sec.EndpointID, "created_at", sec.CreatedAt, "expires_at", sec.ExpiresAt)
	})
}

type secretsDeleteCmd struct {
	remote
	orgFlag
	endpointFlag
	ID string `arg:"" help:"The secret's id."`
}

func (c *secretsDeleteCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	if err := s.Secrets.Delete(env.ctx, c.Org, c.Endpoint, c.ID); err != nil {
		return s.fail(err)
	}
	return s.done("deleted %s", c.ID)
}

func showSecret(w io.Writer, sec *client.Secret) {
	pairs := []any{"id", sec.ID, "endpoint_id", sec.EndpointID, "created_at", sec.CreatedAt, "expires_at", sec.ExpiresAt}
	if sec.PublicKey != "" {
		pairs = append(pairs, "public_key", sec.PublicKey)
	}
	fields(w, append(pairs, "value", sec.Value)...)
	fmt.Fprintln(w, "\nThe value is shown this once; give it to the receiver.")
}

// tlsPairs appends what a reply shows of TLS settings (an endpoint's, a broker source's),
// each name after prefix: only the summary, as the PEM documents, and the key above all,
// never reach replies.
func tlsPairs(pairs []any, prefix, subject, issuer string, notAfter *time.Time, caSubjects []string) []any {
	if subject != "" {
		pairs = append(pairs, prefix+"client_subject", subject, prefix+"client_issuer", issuer)
		if notAfter != nil {
			pairs = append(pairs, prefix+"client_not_after", notAfter)
		}
	}
	if len(caSubjects) > 0 {
		pairs = append(pairs, prefix+"ca_subjects", strings.Join(caSubjects, "; "))
	}
	return pairs
}
