package consign

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Payload formats.
const (
	FormatEnvelope = "envelope" // {"id","type","timestamp","data"}
	FormatRaw      = "raw"      // the event payload exactly as it was given
)

// Ordering modes.
const (
	OrderingNone = "none"
	OrderingKey  = "key"
)

// Health states of an endpoint.
const (
	HealthHealthy = "healthy"
	HealthFailing = "failing"
	HealthFailed  = "failed"
)

// Limits on endpoint configuration.
const (
	MaxTopics        = 100
	MaxHeaders       = 20
	MaxHeaderValue   = 1024
	MaxRetrySchedule = 50
	// MaxResponseFields bounds response_fields; MaxResponsePointer each pointer's length.
	MaxResponseFields  = 8
	MaxResponsePointer = 200
	// MaxTransformation bounds a transformation's code, in bytes.
	MaxTransformation = 64 << 10
)

// Endpoint is a partner's webhook configuration: where to send which events, and how.
type Endpoint struct {
	ID          string   `json:"id"`
	OrgID       string   `json:"org_id"`
	URL         string   `json:"url" doc:"where deliveries go: https://… (http:// with --insecure-targets), or a broker over TLS: tls://host:4222/<subject> (NATS JetStream), amqps://user:pass@host:5671/<vhost>?exchange=&routing_key=, kafka+tls://[user:pass@]host:9093[,host…]/<topic>[?sasl=plain|scram-sha-256|scram-sha-512], rediss://host:6379/<db>?stream=<name> (certificates verified against the system roots or tls.ca_certificates); the plaintext nats://, amqp://, kafka://, redis:// only with --insecure-targets; a password in it is stored sealed and shown masked"`
	Description string   `json:"description"`
	Topics      []string `json:"topics"`
	Method      string   `json:"method"`
	// Headers are sent with every request. Their values are credentials more often than
	// not: stored sealed, and shown in replies only masked (Masked).
	Headers       map[string]string `json:"headers"`
	PayloadFormat string            `json:"payload_format"`
	Auth          Auth              `json:"auth"`
	// Signature is how requests are signed (Standard Webhooks unless set).
	Signature Signature `json:"signature"`
	// TLS is the endpoint's client certificate and private CAs (nil: none).
	TLS           *EndpointTLS  `json:"tls,omitempty"`
	RateLimit     float64       `json:"rate_limit"`
	BurstLimit    int           `json:"burst_limit"`
	Ordering      string        `json:"ordering"`
	Coalesce      bool          `json:"coalesce"`
	Retry         RetryPolicy   `json:"retry"`
	FailurePolicy FailurePolicy `json:"failure_policy"`
	// ResponseReferencePointer, when set, is an RFC 6901 JSON Pointer (such as
	// "/reference") into the endpoint's JSON reply to a successful attempt; the value found
	// there is kept on the delivery as response_reference (Onport's
	// vendorReceivedReference).
	ResponseReferencePointer string `json:"response_reference_pointer,omitempty"`
	// ResponseFields names values to take from the endpoint's JSON reply to a successful
	// attempt: name → RFC 6901 pointer, at most MaxResponseFields (Onport keeps both the
	// vendor's reference and its id). The values found are kept on the delivery as
	// response_fields, each as a string.
	ResponseFields map[string]string `json:"response_fields,omitempty"`
	// SuccessStatuses, when set, are the only statuses that count as success (each a
	// 2xx status; ReadyCloud accepts only 200). Empty: any 2xx.
	SuccessStatuses []int `json:"success_statuses,omitempty"`
	// Filter, when set, picks which of the events the topics take are sent: JSON rules
	// over {"type", "payload", "ordering_key"} such as {"payload": {"total": {"$gte":
	// 500}}} (internal/filter has the operators). Events it turns away make no delivery
	// and are counted in the endpoint's stats as filtered.
	Filter json.RawMessage `json:"filter,omitempty" doc:"JSON rules over {type, payload, ordering_key} that pick the events sent, such as {\"payload\": {\"total\": {\"$gte\": 500}}}; operators $eq $neq $gt $gte $lt $lte $in $nin $exists $prefix $and $or $not"`
	// Transformation, when set, is JavaScript that may rewrite each webhook before it is
	// signed: function handler(webhook) { … return webhook } (internal/transform).
	Transformation string `json:"transformation,omitempty"`
	// Version, when set, pins the payload version (a date, YYYY-MM-DD): payloads of a
	// versioned event type are converted down to their shape as of that date by the
	// type's downgrade functions before the transformation runs. Empty: the newest.
	Version        string     `json:"version,omitempty"`
	Active         bool       `json:"active"`
	Health         string     `json:"health"`
	DisabledAt     *time.Time `json:"disabled_at"`
	DisabledReason string     `json:"disabled_reason"`
	// FailingSince is when the current run of failed attempts began (nil when the last
	// attempt succeeded); disable_after counts from it.
	FailingSince *time.Time `json:"failing_since"`
	// ReactivatedAt is when the endpoint was last activated again after being inactive
	// (nil if never): max_failures counts only failed attempts made since, so failures
	// from before an outage never count again.
	ReactivatedAt *time.Time `json:"reactivated_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// RetryPolicy is when failed attempts are tried again: Schedule[i] is the wait after
// attempt i+1 (the last entry repeats), each ±20 % jitter, until the delivery is MaxAge
// old; then it fails for good.
type RetryPolicy struct {
	Schedule []Duration `json:"schedule"`
	MaxAge   Duration   `json:"max_age"`
}

// DefaultRetry is the schedule of an endpoint that sets none.
func DefaultRetry() RetryPolicy {
	s := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}
	p := RetryPolicy{MaxAge: Duration(72 * time.Hour)}
	for _, d := range s {
		p.Schedule = append(p.Schedule, Duration(d))
	}
	return p
}

// Delay returns the wait after the attempts-th failed attempt (1-based), with jitter.
func (p RetryPolicy) Delay(attempts int, rnd *rand.Rand) time.Duration {
	if len(p.Schedule) == 0 {
		p = DefaultRetry()
	}
	i := min(max(attempts-1, 0), len(p.Schedule)-1)
	d := float64(p.Schedule[i])
	jitter := 0.8 + 0.4*rnd.Float64()
	return time.Duration(d * jitter)
}

// FailurePolicy says when an endpoint that keeps failing is deactivated: after it has
// accepted nothing for DisableAfter while deliveries were due, and/or after more than
// MaxFailures failed attempts within Window. Zero fields are off, except DisableAfter,
// which defaults to 72h.
type FailurePolicy struct {
	DisableAfter Duration `json:"disable_after"`
	MaxFailures  int      `json:"max_failures,omitempty"`
	Window       Duration `json:"window,omitempty"`
}

// Secret is a signing secret of an endpoint. Value is the plaintext and leaves the
// server only in the reply that creates it; PublicKey is set for ed25519 (whsk_) keys.
type Secret struct {
	ID         string     `json:"id"`
	EndpointID string     `json:"endpoint_id"`
	Value      string     `json:"value,omitempty"`
	PublicKey  string     `json:"public_key,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

// ActiveAt reports whether the secret signs requests at time t.
func (s *Secret) ActiveAt(t time.Time) bool { return s.ExpiresAt == nil || t.Before(*s.ExpiresAt) }

// reservedHeaders are set by Consign on every request and may not be overridden.
var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "User-Agent": true, "Host": true,
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true,
	"Webhook-Sequence": true, "Transfer-Encoding": true, "Connection": true, "Auth": true,
}

// Normalize fills defaults and validates everything except the URL's reachability,
// which the caller checks with the outbound policy in force.
func (e *Endpoint) Normalize() error {
	var v Validation
	e.URL = NormalizeURL(strings.TrimSpace(e.URL))
	if e.URL == "" {
		v.Add("url", "is required")
	}
	if len(e.Description) > 1000 {
		v.Add("description", "must be at most 1000 characters")
	}
	if len(e.Topics) == 0 {
		v.Add("topics", `must name at least one event type, a wildcard such as "order.*", or "*"`)
	} else if len(e.Topics) > MaxTopics {
		v.Add("topics", "at most %d topics", MaxTopics)
	}
	seen := map[string]bool{}
	topics := e.Topics[:0]
	for _, t := range e.Topics {
		if msg := ValidTopic(t); msg != "" {
			v.Add("topics", "%q %s", t, msg)
		} else if !seen[t] {
			seen[t] = true
			topics = append(topics, t)
		}
	}
	e.Topics = topics
	switch e.Method = strings.ToUpper(e.Method); e.Method {
	case "":
		e.Method = http.MethodPost
	case http.MethodPost, http.MethodPut:
	default:
		v.Add("method", `must be "POST" or "PUT"`)
	}
	if len(e.Headers) > MaxHeaders {
		v.Add("headers", "at most %d headers", MaxHeaders)
	}
	e.Headers = normalizeHeaders(&v, "headers", e.Headers, reservedHeaders)
	switch e.PayloadFormat {
	case "":
		e.PayloadFormat = FormatEnvelope
	case FormatEnvelope, FormatRaw:
	default:
		v.Add("payload_format", `must be "envelope" or "raw"`)
	}
	e.Auth.normalize(&v, e.Headers)
	e.Signature.normalize(&v, e.Auth.Type, e.Headers)
	if e.RateLimit < 0 || e.RateLimit > 100000 {
		v.Add("rate_limit", "must be between 0 (no limit) and 100000 requests per second")
	}
	if e.BurstLimit < 0 || e.BurstLimit > 10000 {
		v.Add("burst_limit", "must be between 0 (no limit) and 10000 requests in flight")
	}
	switch e.Ordering {
	case "":
		e.Ordering = OrderingNone
	case OrderingNone, OrderingKey:
	default:
		v.Add("ordering", `must be "none" or "key"`)
	}
	if len(e.Retry.Schedule) > MaxRetrySchedule {
		v.Add("retry.schedule", "at most %d entries", MaxRetrySchedule)
	}
	for _, d := range e.Retry.Schedule {
		if d < Duration(10*time.Millisecond) || d > Duration(7*24*time.Hour) {
			v.Add("retry.schedule", "each wait must be between 10ms and 168h")
			break
		}
	}
	if e.Retry.MaxAge < 0 || e.Retry.MaxAge > Duration(30*24*time.Hour) {
		v.Add("retry.max_age", "must be at most 720h")
	}
	if len(e.Retry.Schedule) == 0 {
		e.Retry.Schedule = DefaultRetry().Schedule
	}
	if e.Retry.MaxAge == 0 {
		e.Retry.MaxAge = DefaultRetry().MaxAge
	}
	fp := &e.FailurePolicy
	if fp.DisableAfter < 0 || fp.Window < 0 || fp.MaxFailures < 0 {
		v.Add("failure_policy", "durations and counts cannot be negative")
	}
	if fp.DisableAfter == 0 {
		fp.DisableAfter = Duration(72 * time.Hour)
	}
	if (fp.MaxFailures > 0) != (fp.Window > 0) {
		v.Add("failure_policy", "max_failures and window go together")
	}
	if p := e.ResponseReferencePointer; p != "" {
		if msg := validResponsePointer(p); msg != "" {
			v.Add("response_reference_pointer", "%s", msg)
		}
	}
	if len(e.ResponseFields) > MaxResponseFields {
		v.Add("response_fields", "at most %d fields", MaxResponseFields)
	}
	for _, name := range slices.Sorted(maps.Keys(e.ResponseFields)) {
		if !validFieldName(name) {
			v.Add("response_fields", "%q is not a field name: 1 to 64 letters, digits, '_', '-' or '.'", name)
		} else if msg := validResponsePointer(e.ResponseFields[name]); msg != "" {
			v.Add("response_fields."+name, "%s", msg)
		}
	}
	if len(e.ResponseFields) == 0 {
		e.ResponseFields = nil
	}
	if len(e.SuccessStatuses) > 100 {
		v.Add("success_statuses", "at most 100 statuses")
	}
	for _, st := range e.SuccessStatuses {
		if st < 200 || st > 299 {
			v.Add("success_statuses", "%d is not a 2xx status: list the 2xx statuses that count as success, such as [200]", st)
			break
		}
	}
	if len(e.SuccessStatuses) == 0 {
		e.SuccessStatuses = nil
	} else {
		slices.Sort(e.SuccessStatuses)
		e.SuccessStatuses = slices.Compact(e.SuccessStatuses)
	}
	if e.Version != "" {
		if msg := ValidVersion(e.Version); msg != "" {
			v.Add("version", "%s", msg)
		}
	}
	if len(e.Transformation) > MaxTransformation {
		v.Add("transformation", "is %d bytes; at most %d", len(e.Transformation), MaxTransformation)
	}
	if e.Health == "" {
		e.Health = HealthHealthy
	}
	return v.Err()
}

// URLKey is what is unique among an org's endpoints: the URL (one configuration per
// target URL), and for an endpoint of auth type token the URL with its topics, since the
// receiver tells such webhooks apart by their Auth token: ReadyCloud webhooks of
// different entities may share one remote_url. (A normalised URL holds no space.)
func (e *Endpoint) URLKey() string {
	if e.Auth.Type != AuthToken {
		return e.URL
	}
	return e.URL + " " + strings.Join(slices.Sorted(slices.Values(e.Topics)), ",")
}

// Succeeds reports whether a 2xx status counts as success for the endpoint: any 2xx,
// or one of SuccessStatuses when it is set.
func (e *Endpoint) Succeeds(status int) bool {
	return status >= 200 && status <= 299 && (len(e.SuccessStatuses) == 0 || slices.Contains(e.SuccessStatuses, status))
}

// NormalizeURL returns an http(s) URL in the one form Consign stores and sends, so that
// one target has one configuration (Modern Dropship: one per target URL) and its request
// line is valid: scheme and host in lower case, no default port (:443 for https, :80 for
// http), "/" for an empty path, and the path and query percent-encoded where they hold a
// space or another character a request line may not carry ("a b" → "a%20b"; escapes
// already present are kept). Any other URL, or one that does not parse, is returned as
// given for the target rules to judge.
func NormalizeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return raw
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return raw
	}
	u.Host = strings.ToLower(u.Host)
	if p := u.Port(); p == "443" && u.Scheme == "https" || p == "80" && u.Scheme == "http" {
		u.Host = strings.TrimSuffix(u.Host, ":"+p)
	}
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
	u.RawQuery = escapeQuery(u.RawQuery)
	u.ForceQuery = false
	return u.String()
}

// escapeQuery percent-encodes each byte of a raw query that RFC 3986 does not allow
// there, keeping valid escapes ("%2F") as they are.
func escapeQuery(q string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c == '%' && i+2 < len(q) && isHex(q[i+1]) && isHex(q[i+2]) || queryByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// queryByte reports whether RFC 3986 allows c in a query as it is: unreserved,
// sub-delims, ':', '@', '/' and '?'.
func queryByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/?", c) >= 0
}

// validResponsePointer says what is wrong with a pointer into an endpoint's reply, or "".
func validResponsePointer(p string) string {
	switch {
	case p == "":
		return `is empty: want a JSON pointer such as "/reference"`
	case len(p) > MaxResponsePointer:
		return fmt.Sprintf("must be at most %d characters", MaxResponsePointer)
	}
	return ValidJSONPointer(p)
}

// validFieldName reports whether name may name a response field.
func validFieldName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// NormalizeHeaders checks headers a transformation returned by the rules of an
// endpoint's headers (at most MaxHeaders, valid names and values, none that Consign
// sets) and returns them with canonical names.
func NormalizeHeaders(in map[string]string) (map[string]string, error) {
	var v Validation
	if len(in) > MaxHeaders {
		v.Add("headers", "at most %d headers", MaxHeaders)
	}
	out := normalizeHeaders(&v, "headers", in, reservedHeaders)
	return out, v.Err()
}

// normalizeHeaders checks custom headers (valid names, not ones Consign sets, values a
// request can carry) and returns them with canonical names.
func normalizeHeaders(v *Validation, field string, in map[string]string, reserved map[string]bool) map[string]string {
	out := make(map[string]string, len(in))
	for name, value := range in {
		canon := http.CanonicalHeaderKey(name)
		msg := validHeaderValue(value)
		switch {
		case !validHeaderName(name):
			v.Add(field, "%q is not a valid header name", name)
		case reserved[canon]:
			v.Add(field, "%q is set by Consign and cannot be overridden", name)
		case msg != "":
			v.Add(field, "value of %q %s", name, msg)
		default:
			out[canon] = value
		}
	}
	return out
}

// validHeaderValue says why s cannot be sent as a header value, or "". RFC 9110 allows
// visible characters, spaces, tabs and bytes from 0x80 up; HTTP clients refuse any other
// control character, so such a value would fail every attempt.
func validHeaderValue(s string) string {
	if len(s) > MaxHeaderValue {
		return fmt.Sprintf("must be at most %d bytes", MaxHeaderValue)
	}
	for i := range len(s) {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Sprintf("has a control character (byte 0x%02x at offset %d): a header value is one line of visible characters, spaces and tabs", c, i)
		}
	}
	return ""
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}

// Subscribes reports whether the endpoint takes events of type typ.
func (e *Endpoint) Subscribes(typ string) bool {
	for _, t := range e.Topics {
		if TopicMatches(t, typ) {
			return true
		}
	}
	return false
}
