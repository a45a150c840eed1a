package consign

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Verification schemes of a source: how Consign tells a provider's request from a forgery.
const (
	VerifyNone             = "none"              // anyone who knows the ingest URL may post
	VerifyHMACSHA256       = "hmac-sha256"       // HMAC-SHA256 of the body in a header (Shopify, GitHub, WooCommerce…)
	VerifyStandardWebhooks = "standard-webhooks" // webhook-id/-timestamp/-signature (and svix-*), 5 min tolerance
	VerifyBasic            = "basic"             // HTTP Basic credentials
	VerifyHeaderToken      = "header-token"      // a fixed secret token in a header
)

// HMAC signature encodings.
const (
	EncodingHex    = "hex"
	EncodingBase64 = "base64"
)

// Origins of a receipt.
const (
	ViaWebhook = "webhook" // a request to the source's ingest URL
	ViaPoll    = "poll"    // an item found by the source's fallback poll
	// A message read from the source's broker has the broker's name: FromNATS,
	// FromAMQP or FromKafka.
)

// States of a receipt.
const (
	ReceiptPending   = "pending"   // accepted; its event is being created
	ReceiptProcessed = "processed" // accepted and turned into an event (EventID)
	ReceiptDuplicate = "duplicate" // its dedupe key was accepted before; no event
	ReceiptRejected  = "rejected"  // not turned into an event; Reason says why
)

// Limits on sources and what they receive.
const (
	MaxSecretLength    = 1024
	MinSecretLength    = 8
	MaxPollHeaders     = 20
	MinPollInterval    = time.Second
	MaxPollInterval    = 31 * 24 * time.Hour
	DefaultPollTimeout = 30 * time.Second
	MaxPollTimeout     = 5 * time.Minute
	MaxDedupeKey       = MaxKeyLength
)

// Redacted replaces the value of a credential wherever one would be shown.
const Redacted = "[redacted]"

// Source is an inbound URL that receives one provider's webhooks for an org, verifies
// them, drops duplicates and turns each accepted request into an event of Topic. An
// optional Poll fetches the provider's list on a schedule and fills the gaps left by
// webhooks that never arrived.
type Source struct {
	ID     string       `json:"id"`
	OrgID  string       `json:"org_id"`
	Name   string       `json:"name"`
	Topic  string       `json:"topic"`
	Verify SourceVerify `json:"verify"`
	Dedupe SourceDedupe `json:"dedupe"`
	Poll   *SourcePoll  `json:"poll"`
	// From is a broker the source also reads messages from; nil when it reads none.
	From *SourceFrom `json:"from"`
	// TypePointer (an RFC 6901 pointer into the body) or TypeHeader names where a
	// request or message carries its event type; one without it becomes Topic.
	TypePointer string `json:"type_pointer,omitempty"`
	TypeHeader  string `json:"type_header,omitempty"`
	// FromStatus is set when From is: how this node's consumer of the broker is doing.
	FromStatus *FromStatus `json:"from_status,omitempty"`
	// PollStatus is set when Poll is: when it runs next and how its last run went.
	PollStatus *PollStatus `json:"poll_status,omitempty"`
	// Token is the secret part of the ingest URL (…/in/{token}); never stored in clear.
	Token     string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SourceVerify says how requests to a source are verified. Secret and Password are
// credentials: sealed at rest and shown only when they are set or generated.
type SourceVerify struct {
	Type string `json:"type"`
	// Header carries the signature (hmac-sha256) or the token (header-token).
	Header string `json:"header,omitempty"`
	// Encoding of an HMAC signature: "hex" (default) or "base64".
	Encoding string `json:"encoding,omitempty"`
	// Prefix precedes an HMAC signature in its header, such as "sha256=".
	Prefix string `json:"prefix,omitempty"`
	// Secret is the HMAC key, the Standard Webhooks secret (whsec_…, or a whpk_ public
	// key) or the header token. Consign generates one when it is left empty.
	Secret string `json:"secret,omitempty"`
	// Token is accepted as another name for Secret (header-token); it is never shown.
	Token    string `json:"token,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// SourceDedupe names where a provider puts its event id: a header, or a JSON pointer
// (RFC 6901) into the body. A request whose id was accepted before is a duplicate.
type SourceDedupe struct {
	Header      string `json:"header,omitempty"`
	JSONPointer string `json:"json_pointer,omitempty"`
}

// SourcePoll is a fallback sync: GET URL on a schedule, take the array at ItemsPointer
// ("" = the whole document), and turn every item whose id (at IDPointer) was never
// received into an event. Exactly one of Interval and Cron is set; Cron is five fields
// read in Timezone (default UTC), such as "0 0 * * *" for once a day at midnight.
//
// Each run asks for a time window: the URL and header values may hold {since} and
// {until} (RFC 3339 UTC) or {since_unix} and {until_unix}. The window runs from the end
// of the last successful run's window, less Overlap (the first run: now − Lookback), to
// the run's start, so a daily sync asks the provider only for what is new. A reply may
// point at the next page (NextPointer): an absolute or relative URL, or a cursor put
// into the URL's {cursor}; pages are followed up to MaxPages. Only a run that read every
// page moves the window on.
type SourcePoll struct {
	URL          string            `json:"url"`
	Headers      map[string]string `json:"headers,omitempty"`
	ItemsPointer string            `json:"items_pointer"`
	IDPointer    string            `json:"id_pointer"`
	Interval     Duration          `json:"interval,omitempty"`
	Cron         string            `json:"cron,omitempty"`
	Timezone     string            `json:"timezone,omitempty"`
	// Timeout bounds one poll request; default 30s, at most 5m.
	Timeout Duration `json:"timeout,omitempty"`
	// Lookback is how far back the first window starts; default 24h, at most 744h.
	Lookback Duration `json:"lookback,omitempty"`
	// Overlap starts each later window this long before the last one ended, for
	// providers that list an item some time after it happened; default 0, at most 744h.
	// Items seen twice are duplicates (dedupe by IDPointer), not new events.
	Overlap Duration `json:"overlap,omitempty"`
	// NextPointer is an RFC 6901 pointer to the next page's URL (or cursor, for a URL
	// with {cursor}) in each reply; empty: one page. A missing, null or empty value ends.
	NextPointer string `json:"next_pointer,omitempty"`
	// MaxPages bounds the pages one run follows; default 100, at most 1000. A run that
	// stops there with pages left fails, and the window stays where it was.
	MaxPages int `json:"max_pages,omitempty"`
}

// Poll URL placeholders (PollWindow.Expand).
const (
	PollSince     = "{since}"
	PollUntil     = "{until}"
	PollSinceUnix = "{since_unix}"
	PollUntilUnix = "{until_unix}"
	PollCursor    = "{cursor}"
)

// Limits and defaults of a poll's window and pages.
const (
	DefaultPollLookback = 24 * time.Hour
	MaxPollLookback     = 744 * time.Hour
	DefaultPollMaxPages = 100
	MaxPollPages        = 1000
)

// ExpandPollWindow fills a poll URL's or header value's window placeholders; cursor
// fills {cursor} (query-escaped when escape is set, for URLs).
func ExpandPollWindow(s string, since, until time.Time, cursor string, escape bool) string {
	if !strings.Contains(s, "{") {
		return s
	}
	if escape {
		cursor = url.QueryEscape(cursor)
	}
	return strings.NewReplacer(
		PollSince, since.UTC().Format(time.RFC3339), PollUntil, until.UTC().Format(time.RFC3339),
		PollSinceUnix, strconv.FormatInt(since.Unix(), 10), PollUntilUnix, strconv.FormatInt(until.Unix(), 10),
		PollCursor, cursor,
	).Replace(s)
}

// PollStatus is the state of a source's poll.
type PollStatus struct {
	NextRunAt *time.Time `json:"next_run_at"`
	LastRunAt *time.Time `json:"last_run_at"`
	// LastError is why the last run failed ("" when it succeeded).
	LastError string `json:"last_error"`
	// LastNewItems counts the items the last run turned into events.
	LastNewItems int `json:"last_new_items"`
	// SyncedUntil is the end of the last successful run's window: the next window
	// starts there (less the poll's overlap). Nil before the first success.
	SyncedUntil *time.Time `json:"synced_until"`
}

// Receipt is one inbound request (or polled item), stored as received with what
// Consign made of it.
type Receipt struct {
	ID       string `json:"id"`
	OrgID    string `json:"org_id"`
	SourceID string `json:"source_id"`
	Via      string `json:"via"`
	Status   string `json:"status"`
	// Topic is the event type the receipt becomes.
	Topic    string `json:"topic"`
	Verified bool   `json:"verified"`
	// Reason says why a receipt was rejected, or notes something about an accepted one.
	Reason    string `json:"reason"`
	DedupeKey string `json:"dedupe_key"`
	Duplicate bool   `json:"duplicate"`
	EventID   string `json:"event_id"`
	// Headers are the request's headers, credentials redacted.
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	ReceivedAt time.Time         `json:"received_at"`
}

// pollHeadersReserved are set by Consign on poll requests or describe the connection.
var pollHeadersReserved = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Te": true, "Upgrade": true, "Trailer": true, "Keep-Alive": true, "Proxy-Connection": true,
}

// Normalize fills defaults and checks everything that needs nothing but the source:
// it leaves the catalog, the poll URL's reachability, cron syntax, time zones and key
// formats to the caller. Secrets must be filled in (generated) before it is called.
func (s *Source) Normalize() error {
	var v Validation
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" {
		v.Add("name", "is required")
	} else if len(s.Name) > 200 {
		v.Add("name", "must be at most 200 characters")
	}
	if msg := ValidTypeName(s.Topic); msg != "" {
		v.Add("topic", "%s", msg)
	} else if strings.HasPrefix(s.Topic, OperationalPrefix) {
		v.Add("topic", "types starting with %q are Consign's own events", OperationalPrefix)
	}
	s.Verify.normalize(&v)
	s.Dedupe.normalize(&v)
	if s.Poll != nil {
		s.Poll.normalize(&v)
	}
	if s.From != nil {
		s.From.normalize(&v, s.ID)
	}
	s.TypeHeader = strings.TrimSpace(s.TypeHeader)
	switch {
	case s.TypePointer != "" && s.TypeHeader != "":
		v.Add("type_pointer", "set type_pointer or type_header, not both")
	case s.TypePointer != "":
		if msg := ValidJSONPointer(s.TypePointer); msg != "" {
			v.Add("type_pointer", "%s", msg)
		}
	case s.TypeHeader != "":
		if !validHeaderName(s.TypeHeader) {
			v.Add("type_header", "%q is not a valid header name", s.TypeHeader)
		} else {
			s.TypeHeader = http.CanonicalHeaderKey(s.TypeHeader)
		}
	}
	return v.Err()
}

func (c *SourceVerify) normalize(v *Validation) {
	if c.Token != "" {
		if c.Secret != "" && c.Secret != c.Token {
			v.Add("verify.token", "is another name for verify.secret; send one of them")
		}
		c.Secret, c.Token = c.Token, ""
	}
	c.Header = strings.TrimSpace(c.Header)
	unused := func(field, value string) {
		if value != "" {
			v.Add("verify."+field, "is not used by %q", c.Type)
		}
	}
	secret := func() {
		switch {
		case c.Secret == "":
			v.Add("verify.secret", "is required")
		case len(c.Secret) < MinSecretLength || len(c.Secret) > MaxSecretLength:
			v.Add("verify.secret", "must be %d to %d characters", MinSecretLength, MaxSecretLength)
		case strings.ContainsAny(c.Secret, "\r\n\x00"):
			v.Add("verify.secret", "must be on one line")
		}
	}
	header := func() {
		if c.Header == "" {
			what := "token"
			if c.Type == VerifyHMACSHA256 {
				what = "signature"
			}
			v.Add("verify.header", "is required: the header that carries the %s", what)
		} else if !validHeaderName(c.Header) {
			v.Add("verify.header", "%q is not a valid header name", c.Header)
		} else {
			c.Header = http.CanonicalHeaderKey(c.Header)
		}
	}
	switch c.Type {
	case "", VerifyNone:
		c.Type = VerifyNone
		unused("header", c.Header)
		unused("encoding", c.Encoding)
		unused("prefix", c.Prefix)
		unused("secret", c.Secret)
		unused("username", c.Username)
		unused("password", c.Password)
	case VerifyHMACSHA256:
		header()
		switch c.Encoding {
		case "":
			c.Encoding = EncodingHex
		case EncodingHex, EncodingBase64:
		default:
			v.Add("verify.encoding", `must be "hex" or "base64"`)
		}
		if len(c.Prefix) > 64 || strings.ContainsAny(c.Prefix, "\r\n\x00") {
			v.Add("verify.prefix", "must be at most 64 characters on one line")
		}
		secret()
		unused("username", c.Username)
		unused("password", c.Password)
	case VerifyStandardWebhooks:
		unused("header", c.Header)
		unused("encoding", c.Encoding)
		unused("prefix", c.Prefix)
		unused("username", c.Username)
		unused("password", c.Password)
		if c.Secret == "" {
			v.Add("verify.secret", "is required")
		}
	case VerifyBasic:
		unused("header", c.Header)
		unused("encoding", c.Encoding)
		unused("prefix", c.Prefix)
		unused("secret", c.Secret)
		switch {
		case c.Username == "":
			v.Add("verify.username", "is required")
		case len(c.Username) > 200 || strings.ContainsAny(c.Username, ":\r\n\x00"):
			v.Add("verify.username", "must be at most 200 characters, without ':'")
		}
		switch {
		case c.Password == "":
			v.Add("verify.password", "is required")
		case len(c.Password) < MinSecretLength || len(c.Password) > MaxSecretLength || strings.ContainsAny(c.Password, "\r\n\x00"):
			v.Add("verify.password", "must be %d to %d characters on one line", MinSecretLength, MaxSecretLength)
		}
	case VerifyHeaderToken:
		header()
		unused("encoding", c.Encoding)
		unused("prefix", c.Prefix)
		unused("username", c.Username)
		unused("password", c.Password)
		secret()
	default:
		v.Add("verify.type", `must be "none", "hmac-sha256", "standard-webhooks", "basic" or "header-token"`)
	}
}

func (d *SourceDedupe) normalize(v *Validation) {
	d.Header = strings.TrimSpace(d.Header)
	switch {
	case d.Header != "" && d.JSONPointer != "":
		v.Add("dedupe", "set header or json_pointer, not both")
	case d.Header != "":
		if !validHeaderName(d.Header) {
			v.Add("dedupe.header", "%q is not a valid header name", d.Header)
		} else {
			d.Header = http.CanonicalHeaderKey(d.Header)
		}
	case d.JSONPointer != "":
		if msg := ValidJSONPointer(d.JSONPointer); msg != "" {
			v.Add("dedupe.json_pointer", "%s", msg)
		}
	}
}

func (p *SourcePoll) normalize(v *Validation) {
	p.URL = strings.TrimSpace(p.URL)
	if p.URL == "" {
		v.Add("poll.url", "is required")
	}
	if len(p.Headers) > MaxPollHeaders {
		v.Add("poll.headers", "at most %d headers", MaxPollHeaders)
	}
	p.Headers = normalizeHeaders(v, "poll.headers", p.Headers, pollHeadersReserved)
	if p.ItemsPointer != "" {
		if msg := ValidJSONPointer(p.ItemsPointer); msg != "" {
			v.Add("poll.items_pointer", "%s", msg)
		}
	}
	if p.IDPointer == "" {
		v.Add("poll.id_pointer", `is required: the JSON pointer of an item's id, such as "/id"`)
	} else if msg := ValidJSONPointer(p.IDPointer); msg != "" {
		v.Add("poll.id_pointer", "%s", msg)
	}
	p.Cron = strings.TrimSpace(p.Cron)
	switch {
	case p.Interval == 0 && p.Cron == "":
		v.Add("poll", `needs a schedule: "interval" (such as "1h") or "cron" (such as "0 0 * * *")`)
	case p.Interval != 0 && p.Cron != "":
		v.Add("poll", `set interval or cron, not both`)
	case p.Interval != 0:
		if p.Interval < Duration(MinPollInterval) || p.Interval > Duration(MaxPollInterval) {
			v.Add("poll.interval", "must be between 1s and 744h")
		}
		if p.Timezone != "" {
			v.Add("poll.timezone", "is only used with cron")
		}
	default:
		if p.Timezone == "" {
			p.Timezone = "UTC"
		}
	}
	switch {
	case p.Timeout == 0:
		p.Timeout = Duration(DefaultPollTimeout)
	case p.Timeout < Duration(time.Second) || p.Timeout > Duration(MaxPollTimeout):
		v.Add("poll.timeout", "must be between 1s and 5m")
	}
	switch {
	case p.Lookback == 0:
		p.Lookback = Duration(DefaultPollLookback)
	case p.Lookback < 0 || p.Lookback > Duration(MaxPollLookback):
		v.Add("poll.lookback", "must be between 0s and 744h")
	}
	if p.Overlap < 0 || p.Overlap > Duration(MaxPollLookback) {
		v.Add("poll.overlap", "must be between 0s and 744h")
	}
	if p.NextPointer != "" {
		if msg := ValidJSONPointer(p.NextPointer); msg != "" {
			v.Add("poll.next_pointer", "%s", msg)
		}
	}
	switch {
	case p.MaxPages == 0:
		p.MaxPages = DefaultPollMaxPages
	case p.MaxPages < 0 || p.MaxPages > MaxPollPages:
		v.Add("poll.max_pages", "must be between 1 and %d", MaxPollPages)
	}
	if strings.Contains(p.URL, PollCursor) && p.NextPointer == "" {
		v.Add("poll.url", "holds %s but next_pointer is not set: name where each reply gives the next page's cursor", PollCursor)
	}
}

// ValidJSONPointer reports why p is not an RFC 6901 JSON pointer, or "" when it is. The
// empty pointer (the whole document) is valid.
func ValidJSONPointer(p string) string {
	if p == "" {
		return ""
	}
	if len(p) > 1000 {
		return "must be at most 1000 characters"
	}
	if p[0] != '/' {
		return `must start with "/", such as "/id" or "/data/0/id"`
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return `may use "~" only as "~0" (for ~) or "~1" (for /)`
		}
	}
	return ""
}

// SensitiveHeader reports whether a header's value is a credential, never to be shown
// or stored in clear.
func SensitiveHeader(name string) bool {
	// It runs for every header of every attempt: lower-case into the stack, not the heap.
	// Header names are ASCII tokens.
	var buf [128]byte
	n := buf[:0]
	if len(name) > len(buf) {
		n = make([]byte, 0, len(name))
	}
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		n = append(n, c)
	}
	return sensitiveLower(n)
}

func sensitiveLower(n []byte) bool {
	switch string(n) {
	case "auth", "authorization", "cookie", "proxy-authorization":
		return true
	}
	return bytes.Contains(n, []byte("token")) || bytes.Contains(n, []byte("secret")) ||
		bytes.Contains(n, []byte("api-key")) || bytes.Contains(n, []byte("apikey")) ||
		bytes.Contains(n, []byte("password"))
}
