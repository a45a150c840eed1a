package manage

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/filter"
	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/transform"
)

// EndpointInput is what a client may set on an endpoint. A PATCH starts from the stored
// endpoint's input and decodes the request over it, so absent fields keep their values.
type EndpointInput struct {
	URL           string            `json:"url" doc:"where deliveries go: https://… (http:// with --insecure-targets), or a broker over TLS: tls://host:4222/<subject> (NATS JetStream), amqps://user:pass@host:5671/<vhost>?exchange=&routing_key=, kafka+tls://[user:pass@]host:9093[,host…]/<topic>[?sasl=plain|scram-sha-256|scram-sha-512], rediss://host:6379/<db>?stream=<name> (certificates verified against the system roots or tls.ca_certificates); the plaintext nats://, amqp://, kafka://, redis:// only with --insecure-targets; a password in it is stored sealed and shown masked"`
	Description   string            `json:"description"`
	Topics        []string          `json:"topics"`
	Method        string            `json:"method"`
	Headers       map[string]string `json:"headers"`
	PayloadFormat string            `json:"payload_format"`
	// Auth, when given, replaces the endpoint's auth as a whole (nil: keep, or on
	// creation type signature). A PATCH that keeps the type and leaves the credential
	// out, or sends back its mask, keeps the stored credential.
	Auth *consign.Auth `json:"auth,omitempty"`
	// Signature, when given, replaces the endpoint's signature as a whole (nil: keep).
	Signature *consign.Signature `json:"signature,omitempty"`
	// TLS, when given, replaces the endpoint's client certificate, key and CAs as a
	// whole (nil: keep; {} removes them).
	TLS           *consign.TLSInput     `json:"tls,omitempty"`
	RateLimit     float64               `json:"rate_limit"`
	BurstLimit    int                   `json:"burst_limit"`
	Ordering      string                `json:"ordering"`
	Coalesce      bool                  `json:"coalesce"`
	Retry         consign.RetryPolicy   `json:"retry"`
	FailurePolicy consign.FailurePolicy `json:"failure_policy"`
	Active        *bool                 `json:"active,omitempty"`
	// ResponseReferencePointer is an RFC 6901 pointer into a successful reply's JSON whose
	// value is kept on the delivery as response_reference.
	ResponseReferencePointer string `json:"response_reference_pointer,omitempty"`
	// ResponseFields are values to keep from a successful reply: name → RFC 6901
	// pointer, at most 8, kept on the delivery as response_fields.
	ResponseFields Pointers `json:"response_fields,omitempty"`
	// SuccessStatuses, when set, are the only (2xx) statuses that count as success.
	SuccessStatuses []int `json:"success_statuses,omitempty"`
	// Filter picks the events sent (null removes it); compiled and refused here when
	// malformed, so fan-out never meets a bad one.
	Filter json.RawMessage `json:"filter,omitempty" doc:"JSON rules over {type, payload, ordering_key} that pick the events sent, such as {\"payload\": {\"total\": {\"$gte\": 500}}}; operators $eq $neq $gt $gte $lt $lte $in $nin $exists $prefix $and $or $not; null removes it"`
	// Transformation is JavaScript that may rewrite each webhook before it is signed
	// (internal/transform); "" removes it.
	Transformation string `json:"transformation,omitempty" doc:"JavaScript run before signing: function handler(webhook) { … return webhook } over {type, payload, url, method, headers}; it may change those or set webhook.cancel = true; at most 50 ms of CPU a run; \"\" removes it"`
	// Version pins the payload version, a date (YYYY-MM-DD): payloads of versioned event
	// types are converted down to their shape as of that date; "" receives the newest.
	Version string `json:"version,omitempty" doc:"pins the payload version, a date YYYY-MM-DD: payloads of versioned event types are converted down to their shape as of that date before the transformation runs; \"\" (default) receives the newest version"`
	// Secret, on creation only, is the first signing secret (whsec_… or an ed25519
	// whsk_… key); Consign generates one when it is empty.
	Secret string `json:"secret,omitempty"`
	// SecretExpiresAt, on creation only, is when the first secret stops signing.
	SecretExpiresAt *time.Time `json:"secret_expires_at,omitempty"`
}

// EndpointPatch is the body of an update: the endpoint's input, decoded over its current
// values, and what to do with what waited while it was inactive.
type EndpointPatch struct {
	EndpointInput
	// DiscardPaused, with "active": true on an inactive endpoint, cancels the deliveries
	// that waited for it (paused) instead of sending them.
	DiscardPaused bool `json:"discard_paused,omitempty"`
}

// Input returns the writable fields of a stored endpoint, for PATCH.
func Input(e *consign.Endpoint) EndpointInput {
	active := e.Active
	return EndpointInput{
		URL: e.URL, Description: e.Description, Topics: append([]string(nil), e.Topics...), Method: e.Method,
		Headers: maps.Clone(e.Headers), PayloadFormat: e.PayloadFormat, RateLimit: e.RateLimit,
		BurstLimit: e.BurstLimit, Ordering: e.Ordering, Coalesce: e.Coalesce, Retry: e.Retry,
		FailurePolicy: e.FailurePolicy, Active: &active, ResponseReferencePointer: e.ResponseReferencePointer,
		ResponseFields: maps.Clone(e.ResponseFields), SuccessStatuses: slices.Clone(e.SuccessStatuses),
		Filter:         slices.Clone(e.Filter),
		Transformation: e.Transformation,
		Version:        e.Version,
	}
}

// Pointers is a set of named JSON pointers. Decoding replaces it as a whole (a PATCH
// names every field it keeps; null removes them all), where a plain map would merge.
type Pointers map[string]string

// UnmarshalJSON implements json.Unmarshaler.
func (p *Pointers) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*p = m
	return nil
}

func (in *EndpointInput) apply(e *consign.Endpoint) {
	e.URL, e.Description, e.Topics, e.Method, e.Headers = in.URL, in.Description, in.Topics, in.Method, in.Headers
	e.PayloadFormat, e.RateLimit, e.BurstLimit = in.PayloadFormat, in.RateLimit, in.BurstLimit
	if in.Auth != nil {
		e.Auth = *in.Auth
	}
	e.Ordering, e.Coalesce, e.Retry, e.FailurePolicy = in.Ordering, in.Coalesce, in.Retry, in.FailurePolicy
	e.ResponseReferencePointer, e.ResponseFields = in.ResponseReferencePointer, in.ResponseFields
	e.SuccessStatuses, e.Filter, e.Transformation, e.Version = in.SuccessStatuses, in.Filter, in.Transformation, in.Version
	if in.Signature != nil {
		e.Signature = *in.Signature
	}
}

// CreatedEndpoint is the reply to a creation: the endpoint and its first secret's value,
// shown this once.
type CreatedEndpoint struct {
	*consign.Endpoint
	Secret    string `json:"secret,omitempty"`
	PublicKey string `json:"public_key,omitempty"`
}

// validateEndpoint applies the rules that need more than the endpoint itself: the URL
// policy, the catalog and the org's role.
func (s *Service) validateEndpoint(ctx context.Context, e *consign.Endpoint) error {
	var v consign.Validation
	if err := e.Normalize(); err != nil {
		return err
	}
	if f, err := filter.Normalize(e.Filter); err != nil {
		v.Add("filter", "%s", err.Error())
	} else {
		e.Filter = f
	}
	if err := s.cfg.ValidateURL(e.URL, s.cfg.InsecureTargets); err != nil {
		v.Add("url", "%s", err.Error())
	}
	if e.Auth.Type == consign.AuthOAuth2 {
		// The token endpoint is called from here too: the same target rules.
		if err := s.cfg.ValidateURL(e.Auth.TokenURL, s.cfg.InsecureTargets); err != nil {
			v.Add("auth.token_url", "%s", err.Error())
		}
	}
	if e.Transformation != "" {
		if _, err := transform.Compile(e.Transformation); err != nil {
			v.Add("transformation", "%s", err.Error())
		}
	}
	org, err := s.store.OrgGet(ctx, e.OrgID)
	if err != nil {
		return err
	}
	for _, t := range e.Topics {
		if t == "*" || strings.HasSuffix(t, ".*") {
			continue
		}
		et, err := s.store.EventTypeGet(ctx, t)
		if consign.ErrorCode(err) == consign.ENOTFOUND {
			v.Add("topics", "%q is not in the event-type catalog (GET /v1/event-types lists it; POST /v1/event-types adds a type)", t)
			continue
		} else if err != nil {
			return err
		}
		if !org.Role.May(et.AvailableFor) {
			v.Add("topics", "%q is available for %s only, and this org is a %s", t, rolesText(et.AvailableFor), org.Role)
		}
	}
	return v.Err()
}

func rolesText(rs []consign.Role) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, string(r)+"s")
	}
	return strings.Join(parts, " and ")
}

// CreateEndpoint validates and stores a new endpoint with its first secret.
func (s *Service) CreateEndpoint(ctx context.Context, orgID string, in *EndpointInput) (*CreatedEndpoint, error) {
	now := s.now()
	e := &store.EndpointRow{}
	in.apply(&e.Endpoint)
	e.ID, e.OrgID, e.Active, e.Health = consign.NewID(consign.PrefixEndpoint, now), orgID, true, consign.HealthHealthy
	if in.Active != nil {
		e.Active = *in.Active
	}
	e.CreatedAt, e.UpdatedAt = now, now
	if err := s.validateEndpoint(ctx, &e.Endpoint); err != nil {
		return nil, err
	}
	if !e.Active {
		e.DisabledAt, e.DisabledReason = &now, "created inactive"
	}
	if err := checkSecretSigns(&e.Endpoint, in.Secret, "secret"); err != nil {
		return nil, err
	}
	if err := s.applyTLS(e, in.TLS, now); err != nil {
		return nil, err
	}
	s.sealCredential(e)
	if err := s.sealHeaders(e); err != nil {
		return nil, err
	}
	sec, err := s.newSecret(e.ID, in.Secret, in.SecretExpiresAt, "secret")
	if err != nil {
		return nil, err
	}
	clear := s.sealURL(e)
	if err := s.store.EndpointInsert(ctx, e, []*store.SecretRow{sec}); err != nil {
		return nil, err
	}
	e.URL = clear
	return &CreatedEndpoint{Endpoint: &e.Endpoint, Secret: sec.Value, PublicKey: sec.PublicKey}, nil
}

// Endpoint returns one endpoint with its token opened.
func (s *Service) Endpoint(ctx context.Context, orgID, id string) (*consign.Endpoint, error) {
	row, err := s.store.EndpointGet(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	return s.openEndpoint(row)
}

func (s *Service) openEndpoint(row *store.EndpointRow) (*consign.Endpoint, error) {
	if row.Signature.Scheme == "" {
		// Stored before signature schemes: what such an endpoint has always done.
		row.Signature.Scheme = consign.SignatureStandardWebhooks
		if row.Auth.Type == consign.AuthToken {
			row.Signature.Scheme = consign.SignatureNone
		}
	}
	if c := row.Auth.Credential(); c != nil && len(row.TokenSealed) > 0 {
		v, err := s.open(row.TokenSealed)
		if err != nil {
			return nil, err
		}
		*c = v
	}
	if len(row.HeadersSealed) > 0 {
		b, err := s.box.OpenWith(row.HeadersSealed, []byte(row.ID))
		if err != nil {
			return nil, fmt.Errorf("open sealed headers of endpoint %s (is CONSIGN_ENCRYPTION_KEY the one the data was written with?): %w", row.ID, err)
		}
		if err := json.Unmarshal(b, &row.Headers); err != nil {
			return nil, fmt.Errorf("headers of endpoint %s: %w", row.ID, err)
		}
	}
	if len(row.URLPasswordSealed) > 0 {
		p, err := s.box.OpenWith(row.URLPasswordSealed, urlPasswordAD(row.ID))
		if err != nil {
			return nil, fmt.Errorf("open the sealed URL password of endpoint %s (is CONSIGN_ENCRYPTION_KEY the one the data was written with?): %w", row.ID, err)
		}
		row.URL, row.URLPasswordSealed = consign.WithURLPassword(row.URL, string(p)), nil
	}
	if row.TLS != nil && len(row.TLSKeySealed) > 0 {
		key, err := s.openTLSKey(row)
		if err != nil {
			return nil, err
		}
		row.TLS.ClientKey = key
	}
	return &row.Endpoint, nil
}

// sealURL seals the password in the endpoint's URL (a broker's credential) into its
// row, bound to its id, and leaves the URL without it, so neither the URL column nor
// the settings hold it in clear; it returns the URL as given, for the caller to put
// back once the row is written.
func (s *Service) sealURL(row *store.EndpointRow) string {
	clear := row.URL
	row.URLPasswordSealed = nil
	if p, without, ok := consign.URLPassword(row.URL); ok && p != "" {
		row.URL, row.URLPasswordSealed = without, s.box.SealWith([]byte(p), urlPasswordAD(row.ID))
	}
	return clear
}

func urlPasswordAD(endpointID string) []byte { return []byte(endpointID + "/url") }

// sealHeaders seals an endpoint's headers into its row (bound to its id, so a sealed
// value cannot be moved to another endpoint): header values are credentials more often
// than not, and the store never holds them in clear.
func (s *Service) sealHeaders(row *store.EndpointRow) error {
	row.HeadersSealed = nil
	if len(row.Headers) == 0 {
		return nil
	}
	b, err := json.Marshal(row.Headers)
	if err != nil {
		return err
	}
	row.HeadersSealed = s.box.SealWith(b, []byte(row.ID))
	return nil
}

// SealStoredHeaders seals the headers of endpoints stored in clear (by a version before
// headers were sealed), in every org. It runs at start; running it again, or on several
// nodes at once, changes nothing more.
func (s *Service) SealStoredHeaders(ctx context.Context) (int, error) {
	sealed := 0
	p := store.Page{Limit: 500}
	for {
		orgs, err := s.store.OrgList(ctx, p)
		if err != nil {
			return sealed, err
		}
		for _, o := range orgs {
			rows, err := s.store.EndpointListAll(ctx, o.ID)
			if err != nil {
				return sealed, err
			}
			for _, row := range rows {
				if len(row.HeadersSealed) > 0 || len(row.Headers) == 0 {
					continue
				}
				if err := s.sealHeaders(row); err != nil {
					return sealed, err
				}
				if err := s.store.EndpointUpdate(ctx, row); err != nil && consign.ErrorCode(err) != consign.ENOTFOUND {
					return sealed, err
				}
				sealed++
			}
		}
		if len(orgs) < p.Limit {
			return sealed, nil
		}
		p.Cursor = orgs[len(orgs)-1].ID
	}
}

// applyTLS checks and sets the endpoint's TLS settings when in is given, sealing the
// client key.
func (s *Service) applyTLS(row *store.EndpointRow, in *consign.TLSInput, now time.Time) error {
	if in == nil {
		return nil
	}
	t, err := consign.ParseTLS(*in, now)
	if err != nil {
		return err
	}
	row.TLS, row.TLSKeySealed = t, nil
	if t != nil && t.ClientKey != "" {
		row.TLSKeySealed = s.box.SealWith([]byte(t.ClientKey), tlsKeyAD(row.ID))
	}
	return nil
}

// tlsKeyAD binds a sealed client key to its endpoint, as sealed headers are.
func tlsKeyAD(endpointID string) []byte { return []byte(endpointID + "/tls") }

// openTLSKey opens the endpoint's sealed client key.
func (s *Service) openTLSKey(row *store.EndpointRow) (string, error) {
	b, err := s.box.OpenWith(row.TLSKeySealed, tlsKeyAD(row.ID))
	if err != nil {
		return "", fmt.Errorf("open sealed tls key of endpoint %s (is CONSIGN_ENCRYPTION_KEY the one the data was written with?): %w", row.ID, err)
	}
	return string(b), nil
}

// Endpoints lists an org's endpoints.
func (s *Service) Endpoints(ctx context.Context, orgID string, p store.Page) ([]*consign.Endpoint, error) {
	rows, err := s.store.EndpointList(ctx, orgID, p)
	if err != nil {
		return nil, err
	}
	out := make([]*consign.Endpoint, 0, len(rows))
	for _, r := range rows {
		e, err := s.openEndpoint(r)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// UpdateEndpoint applies a PATCH: decode, a function that decodes the request body over
// the endpoint's current input, is called once. Activation resets health, starts a fresh
// failure window (ReactivatedAt) and sends what waited, or cancels it with
// DiscardPaused; deactivation by hand records who did it.
func (s *Service) UpdateEndpoint(ctx context.Context, orgID, id string, decode func(*EndpointPatch) error) (*consign.Endpoint, error) {
	row, err := s.store.EndpointGet(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.openEndpoint(row); err != nil {
		return nil, err
	}
	patch := EndpointPatch{EndpointInput: Input(&row.Endpoint)}
	if err := decode(&patch); err != nil {
		return nil, err
	}
	in := &patch.EndpointInput
	in.Headers = consign.KeepMasked(in.Headers, row.Headers)
	in.URL = consign.KeepMaskedURL(in.URL, row.URL)
	if in.Secret != "" || in.SecretExpiresAt != nil {
		return nil, consign.Invalid("secret", "secrets are managed with /secrets; a secret's value never changes")
	}
	if patch.DiscardPaused && (in.Active == nil || !*in.Active) {
		return nil, consign.Invalid("discard_paused", `goes with "active": true: it cancels, instead of sending, what waited while the endpoint was inactive`)
	}
	now := s.now()
	wasActive := row.Active
	if in.Auth != nil {
		in.Auth = keepCredential(in.Auth, &row.Auth)
	}
	if in.Signature == nil && row.Auth.Type == consign.AuthToken && in.Auth != nil && in.Auth.Type != consign.AuthToken {
		// A token endpoint's "none" was not a choice: one that stops using a token is
		// signed as any other unless the PATCH says how.
		in.Signature = &consign.Signature{}
	}
	in.apply(&row.Endpoint)
	if err := s.validateEndpoint(ctx, &row.Endpoint); err != nil {
		return nil, err
	}
	if err := s.applyTLS(row, in.TLS, now); err != nil {
		return nil, err
	}
	toggled := in.Active != nil && *in.Active != wasActive
	if toggled {
		row.Active = *in.Active
		if row.Active {
			row.Health, row.DisabledAt, row.DisabledReason, row.FailingSince = consign.HealthHealthy, nil, "", nil
			// Failures from before never count again (dispatch.Tripped's window starts here).
			row.ReactivatedAt, row.DiscardPaused = &now, patch.DiscardPaused
		} else {
			row.DisabledAt, row.DisabledReason = &now, "deactivated by hand"
		}
	}
	s.sealCredential(row)
	if err := s.sealHeaders(row); err != nil {
		return nil, err
	}
	row.UpdatedAt = now
	clear := s.sealURL(row)
	if err := s.store.EndpointUpdate(ctx, row); err != nil {
		return nil, err
	}
	row.URL = clear
	if toggled {
		s.emitToggle(ctx, &row.Endpoint)
	}
	return &row.Endpoint, nil
}

// sealCredential seals the endpoint's credential (the token, password or client secret;
// a token endpoint's is generated when none was given) into its row: the store never
// holds one in clear.
func (s *Service) sealCredential(row *store.EndpointRow) {
	row.TokenSealed = nil
	if row.Auth.Type == consign.AuthToken && row.Auth.Token == "" {
		row.Auth.Token = newToken()
	}
	if c := row.Auth.Credential(); c != nil && *c != "" {
		row.TokenSealed = s.seal(*c)
	}
}

// keepCredential returns next with the stored credential of cur when next keeps the
// auth type and leaves the credential out or sends back its mask (what replies show).
func keepCredential(next, cur *consign.Auth) *consign.Auth {
	out := *next
	c, stored := out.Credential(), cur.Credential()
	if c != nil && stored != nil && out.Type == cur.Type && (*c == "" || *c == consign.Mask(*stored)) {
		*c = *stored
	}
	return &out
}

// checkSecretSigns refuses an hmac-sha256 endpoint whose first secret is an ed25519
// key (whsk_): such a key cannot make an HMAC, and the endpoint would never be sent.
func checkSecretSigns(e *consign.Endpoint, secret, field string) error {
	if e.Signature.Scheme == consign.SignatureHMACSHA256 && strings.HasPrefix(strings.TrimSpace(secret), signing.SigningKeyPrefix) {
		return consign.Invalid(field, "an ed25519 key (whsk_…) cannot make an hmac-sha256 signature: give a whsec_ secret or leave secret out")
	}
	return nil
}

// emitToggle tells the org that an endpoint was deactivated or activated.
func (s *Service) emitToggle(ctx context.Context, e *consign.Endpoint) {
	payload := map[string]any{"endpoint_id": e.ID, "url": consign.MaskURL(e.URL), "active": e.Active, "health": e.Health}
	typ := consign.TypeEndpointEnabled
	if !e.Active {
		typ = consign.TypeEndpointDisabled
		payload["disabled_at"], payload["reason"] = e.DisabledAt, e.DisabledReason
	}
	s.emit(ctx, e.OrgID, typ, payload)
}

// DeleteEndpoint removes an endpoint and its deliveries.
func (s *Service) DeleteEndpoint(ctx context.Context, orgID, id string) error {
	return s.store.EndpointDelete(ctx, orgID, id)
}

// newSecret makes a secret row from a given value (whsec_…, bare base64, or whsk_…) or a
// new random whsec_ secret. Value is kept on the row for the creation reply only.
func (s *Service) newSecret(endpointID, value string, expiresAt *time.Time, field string) (*store.SecretRow, error) {
	now := s.now()
	if value == "" {
		v, err := signing.NewSecret()
		if err != nil {
			return nil, err
		}
		value = v
	}
	key, err := signing.ParseKey(value)
	if err != nil {
		return nil, consign.Invalid(field, "%s", err.Error())
	}
	if expiresAt != nil && !expiresAt.After(now) {
		return nil, consign.Invalid("expires_at", "must be in the future")
	}
	row := &store.SecretRow{Sealed: s.seal(value)}
	row.ID, row.EndpointID, row.Value, row.PublicKey = consign.NewID(consign.PrefixSecret, now), endpointID, value, key.Public()
	row.CreatedAt, row.ExpiresAt = now, utcPtr(expiresAt)
	return row, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Millisecond)
	return &u
}

// SecretInput is a new secret: an optional value and expiry.
type SecretInput struct {
	Value     string     `json:"value,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// AddSecret adds a signing secret, active at once; the reply carries its value once.
func (s *Service) AddSecret(ctx context.Context, orgID, endpointID string, in *SecretInput) (*consign.Secret, error) {
	ep, err := s.store.EndpointGet(ctx, orgID, endpointID)
	if err != nil {
		return nil, err
	}
	if err := checkSecretSigns(&ep.Endpoint, in.Value, "value"); err != nil {
		return nil, err
	}
	row, err := s.newSecret(endpointID, in.Value, in.ExpiresAt, "value")
	if err != nil {
		return nil, err
	}
	if err := s.store.SecretInsert(ctx, row); err != nil {
		return nil, err
	}
	return &row.Secret, nil
}

// Secrets lists an endpoint's secrets without their values.
func (s *Service) Secrets(ctx context.Context, orgID, endpointID string) ([]*consign.Secret, error) {
	if _, err := s.store.EndpointGet(ctx, orgID, endpointID); err != nil {
		return nil, err
	}
	rows, err := s.store.SecretList(ctx, endpointID)
	if err != nil {
		return nil, err
	}
	out := make([]*consign.Secret, len(rows))
	for i, r := range rows {
		out[i] = &r.Secret
	}
	return out, nil
}

// SetSecretExpiry changes when a secret stops signing (nil: never).
func (s *Service) SetSecretExpiry(ctx context.Context, orgID, endpointID, id string, expiresAt *time.Time) (*consign.Secret, error) {
	rows, err := s.Secrets(ctx, orgID, endpointID)
	if err != nil {
		return nil, err
	}
	for _, sec := range rows {
		if sec.ID == id {
			sec.ExpiresAt = utcPtr(expiresAt)
			return sec, s.store.SecretUpdate(ctx, &store.SecretRow{Secret: *sec})
		}
	}
	return nil, consign.Errorf(consign.ENOTFOUND, "secret %q not found", id)
}

// DeleteSecret removes a secret, refusing to remove the last one that still signs.
func (s *Service) DeleteSecret(ctx context.Context, orgID, endpointID, id string) error {
	rows, err := s.Secrets(ctx, orgID, endpointID)
	if err != nil {
		return err
	}
	found, othersActive := false, 0
	for _, sec := range rows {
		if sec.ID == id {
			found = true
		} else if sec.ActiveAt(s.now()) {
			othersActive++
		}
	}
	if !found {
		return consign.Errorf(consign.ENOTFOUND, "secret %q not found", id)
	}
	if othersActive == 0 {
		return consign.Errorf(consign.ECONFLICT, "this is the endpoint's last active secret; add or rotate in a new one first")
	}
	return s.store.SecretDelete(ctx, endpointID, id)
}

// RotateSecret adds a new secret now and lets the others expire after grace (default
// 24h), so receivers can switch without a gap.
func (s *Service) RotateSecret(ctx context.Context, orgID, endpointID string, grace time.Duration, value string) (*consign.Secret, error) {
	if grace < 0 || grace > 30*24*time.Hour {
		return nil, consign.Invalid("grace", "must be between 0s and 720h")
	}
	ep, err := s.store.EndpointGet(ctx, orgID, endpointID)
	if err != nil {
		return nil, err
	}
	if err := checkSecretSigns(&ep.Endpoint, value, "value"); err != nil {
		return nil, err
	}
	row, err := s.newSecret(endpointID, value, nil, "value")
	if err != nil {
		return nil, err
	}
	if err := s.store.SecretRotate(ctx, row, s.now().Add(grace)); err != nil {
		return nil, err
	}
	return &row.Secret, nil
}

// SigningKeys returns the keys that sign requests to an endpoint at time now. The
// dispatcher calls it when its cached copy is older than the endpoint's version.
func (s *Service) SigningKeys(ctx context.Context, endpointID string, now time.Time) ([]signing.Key, []time.Time, error) {
	rows, err := s.store.SecretList(ctx, endpointID)
	if err != nil {
		return nil, nil, err
	}
	var keys []signing.Key
	var expiries []time.Time
	for _, r := range rows {
		if !r.ActiveAt(now) {
			continue
		}
		v, err := s.open(r.Sealed)
		if err != nil {
			return nil, nil, err
		}
		k, err := signing.ParseKey(v)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		var exp time.Time
		if r.ExpiresAt != nil {
			exp = *r.ExpiresAt
		}
		expiries = append(expiries, exp)
	}
	return keys, expiries, nil
}

// Deactivate turns an endpoint off with a reason and marks it failed; its waiting
// deliveries are paused until it is activated again.
func (s *Service) Deactivate(ctx context.Context, orgID, endpointID, reason string) error {
	row, err := s.store.EndpointGet(ctx, orgID, endpointID)
	if err != nil {
		return err
	}
	if !row.Active {
		return nil
	}
	now := s.now()
	row.Active, row.Health, row.DisabledAt, row.DisabledReason, row.UpdatedAt = false, consign.HealthFailed, &now, reason, now
	if err := s.store.EndpointUpdate(ctx, row); err != nil {
		return err
	}
	s.emitToggle(ctx, &row.Endpoint)
	return nil
}
