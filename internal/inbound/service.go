package inbound

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/secretbox"
	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/internal/store"
)

// Config configures the Service. Zero fields take their defaults (WithDefaults); Validate
// says which settings cannot work.
type Config struct {
	// Metrics, if set, counts requests to ingest URLs by result.
	Metrics Metrics
	// InsecureTargets allows http:// and non-public poll URLs, and plaintext and
	// non-public brokers (development, tests).
	InsecureTargets bool
	// ValidateURL checks a poll URL when it is set (no DNS); default
	// sender.ValidateTargetURL.
	ValidateURL func(raw string, insecure bool) error
	// MaxBody is the largest request body POST /in/{token} reads, in bytes; default 1 MiB.
	// A larger one is answered 413 and not stored.
	MaxBody int64
	// MaxPayload is the largest body that can become an event, in bytes: ingest's limit on
	// payloads; default 256 KiB. A larger body is stored as a rejected receipt, answered 413.
	MaxPayload int
	// MaxHeaders is the most header fields an inbound request may carry; default 100.
	MaxHeaders int
	// MaxHeaderBytes bounds the header names and values of an inbound request, in bytes;
	// default 32 KiB.
	MaxHeaderBytes int
	// FailureEventEvery is the least time between two consign.source.verification_failed
	// events of one source; default 1 minute.
	FailureEventEvery time.Duration
	// Workers is how many receipts become events at once; default 16.
	Workers int
	// Sweep is how often pending receipts are looked for in the store (after a restart, or
	// when publishing failed for a passing reason); default 10 s.
	Sweep time.Duration
	// PollConcurrency is how many polls run at once; default 4.
	PollConcurrency int
	// PollRetry is how soon a failed poll is tried again, unless its schedule comes
	// sooner; default 5 minutes.
	PollRetry time.Duration
	// PollCheck is the longest the poller sleeps before it looks at the store again, which
	// bounds how late a schedule written by another process is noticed; default 2 s.
	PollCheck time.Duration
	// ConsumerCheck is how often the broker consumers are compared with the sources in
	// the store, which bounds how late a source changed by another process is consumed
	// as changed; default 2 s.
	ConsumerCheck time.Duration
	// BrokerBatch is the most messages of a broker source stored in one transaction and
	// acknowledged together; default 256.
	BrokerBatch int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.ValidateURL == nil {
		c.ValidateURL = sender.ValidateTargetURL
	}
	if c.MaxBody == 0 {
		c.MaxBody = 1 << 20
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = 256 << 10
	}
	if c.MaxHeaders == 0 {
		c.MaxHeaders = 100
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 32 << 10
	}
	if c.FailureEventEvery == 0 {
		c.FailureEventEvery = time.Minute
	}
	if c.Workers == 0 {
		c.Workers = 16
	}
	if c.Sweep == 0 {
		c.Sweep = 10 * time.Second
	}
	if c.PollConcurrency == 0 {
		c.PollConcurrency = 4
	}
	if c.PollRetry == 0 {
		c.PollRetry = 5 * time.Minute
	}
	if c.PollCheck == 0 {
		c.PollCheck = 2 * time.Second
	}
	if c.ConsumerCheck == 0 {
		c.ConsumerCheck = 2 * time.Second
	}
	if c.BrokerBatch == 0 {
		c.BrokerBatch = 256
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every setting of c (with its defaults applied) that cannot work,
// naming each.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{{"MaxBody", c.MaxBody}, {"MaxPayload", int64(c.MaxPayload)}, {"MaxHeaders", int64(c.MaxHeaders)},
		{"MaxHeaderBytes", int64(c.MaxHeaderBytes)}, {"Workers", int64(c.Workers)}, {"PollConcurrency", int64(c.PollConcurrency)},
		{"BrokerBatch", int64(c.BrokerBatch)}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %d; it must be positive", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"FailureEventEvery", c.FailureEventEvery}, {"Sweep", c.Sweep}, {"PollRetry", c.PollRetry}, {"PollCheck", c.PollCheck},
		{"ConsumerCheck", c.ConsumerCheck}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %s; it must be positive", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// Publisher turns receipts into events and publishes Consign's operational events
// (ingest.Service).
type Publisher interface {
	Publish(ctx context.Context, orgID string, in []ingest.EventInput) ([]ingest.Result, error)
	Emit(ctx context.Context, orgID, typ string, payload any) error
}

// Fetcher makes the HTTP requests of polls (a sender.Sender).
type Fetcher interface {
	Send(ctx context.Context, r sender.Request) sender.Outcome
}

// Service manages sources, receives their requests, turns receipts into events and runs
// polls. Run must be running for receipts to become events and for polls to run;
// receipts accepted while it is not are picked up when it starts.
type Service struct {
	store store.Store
	box   *secretbox.Box
	pub   Publisher
	fetch Fetcher
	cfg   Config
	log   *slog.Logger

	queue      chan *consign.Receipt // accepted receipts for the processor
	inflightMu sync.Mutex
	inflight   map[string]bool // receipts queued or being published

	failMu sync.Mutex
	fails  map[string]*failState // per source: verification_failed announcements

	pollWake  chan struct{}
	pollMu    sync.Mutex
	polling   map[string]bool // sources whose poll runs in this process
	pollSlots chan struct{}

	brokers consumers

	bg sync.WaitGroup // goroutines Run waits for: announcements
}

type failState struct {
	last       time.Time
	suppressed int
}

// New returns a Service. cfg gets its defaults; New panics when it does not pass Validate
// (the composition root validates its settings first).
func New(s store.Store, box *secretbox.Box, pub Publisher, fetch Fetcher, cfg Config) *Service {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("inbound: invalid settings: " + err.Error())
	}
	return &Service{
		store: s, box: box, pub: pub, fetch: fetch, cfg: cfg, log: cfg.Logger,
		queue:     make(chan *consign.Receipt, 4096),
		inflight:  map[string]bool{},
		fails:     map[string]*failState{},
		pollWake:  make(chan struct{}, 1),
		polling:   map[string]bool{},
		pollSlots: make(chan struct{}, cfg.PollConcurrency),
		brokers:   consumers{byID: map[string]*consumer{}, wake: make(chan struct{}, 1)},
	}
}

// MaxBody is the largest request body POST /in/{token} accepts.
func (s *Service) MaxBody() int64 { return s.cfg.MaxBody }

// Run processes receipts, runs polls and consumes broker sources until ctx ends, then waits for the work it
// started to finish.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.process(ctx) })
	wg.Go(func() { s.pollLoop(ctx) })
	wg.Go(func() { s.consumeLoop(ctx) })
	wg.Wait()
	s.bg.Wait()
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// Replace is an object field of a request that is set as a whole: on PATCH, absent keeps
// the current value, null clears it, and an object replaces it (it is not merged into the
// current value). Unknown fields inside it are refused.
type Replace[T any] struct{ V *T }

// UnmarshalJSON implements json.Unmarshaler.
func (r *Replace[T]) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		r.V = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	v := new(T)
	if err := dec.Decode(v); err != nil {
		return err
	}
	r.V = v
	return nil
}

// MarshalJSON implements json.Marshaler.
func (r Replace[T]) MarshalJSON() ([]byte, error) { return json.Marshal(r.V) }

// Metrics observes inbound sources; it must be cheap and must not block.
type Metrics interface {
	// Received is called after each request to an ingest URL with its result (see
	// Receive).
	Received(result string)
}

// SourceInput is what a client may set on a source. A PATCH starts from the stored
// source's input and decodes the request over it.
type SourceInput struct {
	Name   string                        `json:"name"`
	Topic  string                        `json:"topic"`
	Verify Replace[consign.SourceVerify] `json:"verify"`
	Dedupe Replace[consign.SourceDedupe] `json:"dedupe"`
	Poll   Replace[consign.SourcePoll]   `json:"poll"`
	From   Replace[consign.SourceFrom]   `json:"from"`
	// TypePointer and TypeHeader: where a request or message names its event type.
	TypePointer string `json:"type_pointer"`
	TypeHeader  string `json:"type_header"`
}

// credentials is the sealed part of a source.
type credentials struct {
	Secret      string            `json:"secret,omitempty"`
	Password    string            `json:"password,omitempty"`
	PollHeaders map[string]string `json:"poll_headers,omitempty"`
	// FromURL is the broker URL with its credentials.
	FromURL string `json:"from_url,omitempty"`
	// FromTLSKey is the private key of the source's client certificate.
	FromTLSKey string `json:"from_tls_key,omitempty"`
}

// newToken returns an ingest token: 192 random bits, URL-safe.
func newToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken is how ingest tokens are looked up: their SHA-256. Tokens are random, so a
// fast hash is enough.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func randomText(n int, hexText bool) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	if hexText {
		return hex.EncodeToString(b)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// fillSecrets generates the credential a scheme needs when none was given, and reports
// whether it did (the reply must then show it, once).
func fillSecrets(v *consign.SourceVerify) (bool, error) {
	if v.Token != "" || v.Secret != "" {
		return false, nil
	}
	switch v.Type {
	case consign.VerifyHMACSHA256:
		v.Secret = randomText(32, true)
	case consign.VerifyHeaderToken:
		v.Secret = randomText(32, false)
	case consign.VerifyStandardWebhooks:
		sec, err := signing.NewSecret()
		if err != nil {
			return false, err
		}
		v.Secret = sec
	case consign.VerifyBasic:
		if v.Password != "" {
			return false, nil
		}
		v.Password = randomText(24, false)
	default:
		return false, nil
	}
	return true, nil
}

// row seals a source's credentials and token into a storable row.
func (s *Service) row(src *consign.Source) (*store.SourceRow, error) {
	ad := []byte(src.ID)
	row := &store.SourceRow{Source: *src, TokenHash: HashToken(src.Token), TokenSealed: s.box.SealWith([]byte(src.Token), ad)}
	c := credentials{Secret: src.Verify.Secret, Password: src.Verify.Password}
	if src.Poll != nil && len(src.Poll.Headers) > 0 {
		c.PollHeaders = src.Poll.Headers
	}
	if src.From != nil && consign.URLWithoutCredentials(src.From.URL) != src.From.URL {
		c.FromURL = src.From.URL
	}
	if src.From != nil && src.From.TLS != nil {
		c.FromTLSKey = src.From.TLS.ClientKey
	}
	if c.Secret != "" || c.Password != "" || len(c.PollHeaders) > 0 || c.FromURL != "" || c.FromTLSKey != "" {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		row.Sealed = s.box.SealWith(b, ad)
	}
	row.Token, row.Verify.Secret, row.Verify.Token, row.Verify.Password = "", "", "", ""
	if row.Poll != nil {
		p := *row.Poll
		p.Headers = nil
		row.Poll = &p
	}
	if row.From != nil {
		row.From = row.From.Storable()
	}
	return row, nil
}

// open returns the source of a row with its credentials and token in clear.
func (s *Service) open(row *store.SourceRow) (*consign.Source, error) {
	src := row.Source
	ad := []byte(src.ID)
	tok, err := s.box.OpenWith(row.TokenSealed, ad)
	if err != nil {
		return nil, fmt.Errorf("open sealed token of source %s (is CONSIGN_ENCRYPTION_KEY the one the data was written with?): %w", src.ID, err)
	}
	src.Token = string(tok)
	if src.Poll != nil {
		p := *src.Poll
		src.Poll = &p
	}
	if src.From != nil {
		f := *src.From
		f.Brokers = slices.Clone(f.Brokers)
		if f.TLS != nil {
			t := *f.TLS
			f.TLS = &t
		}
		src.From = &f
	}
	if len(row.Sealed) > 0 {
		b, err := s.box.OpenWith(row.Sealed, ad)
		if err != nil {
			return nil, fmt.Errorf("open sealed credentials of source %s (is CONSIGN_ENCRYPTION_KEY the one the data was written with?): %w", src.ID, err)
		}
		var c credentials
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("credentials of source %s: %w", src.ID, err)
		}
		src.Verify.Secret, src.Verify.Password = c.Secret, c.Password
		if src.Poll != nil && len(c.PollHeaders) > 0 {
			src.Poll.Headers = c.PollHeaders
		}
		if src.From != nil && c.FromURL != "" {
			src.From.URL = c.FromURL
		}
		if src.From != nil && src.From.TLS != nil {
			src.From.TLS.ClientKey = c.FromTLSKey
		}
	}
	return &src, nil
}

// Redact returns a copy of src fit for a reply: verification credentials removed, every
// poll header value masked (consign.Mask), whatever the header is called, and the
// credentials of a broker URL masked and its TLS settings summed up
// (consign.SourceFrom.Shown).
func Redact(src *consign.Source) *consign.Source {
	out := *src
	out.Verify.Secret, out.Verify.Token, out.Verify.Password = "", "", ""
	if src.Poll != nil {
		p := *src.Poll
		p.Headers = consign.MaskHeaders(src.Poll.Headers)
		out.Poll = &p
	}
	if src.From != nil {
		out.From = src.From.Shown()
	}
	return &out
}

// validate applies the rules that need more than the source itself.
func (s *Service) validate(ctx context.Context, src *consign.Source) error {
	if err := src.Normalize(); err != nil {
		return err
	}
	if _, err := s.store.OrgGet(ctx, src.OrgID); err != nil {
		return err
	}
	var v consign.Validation
	if _, err := s.store.EventTypeGet(ctx, src.Topic); consign.ErrorCode(err) == consign.ENOTFOUND {
		v.Add("topic", "%q is not in the event-type catalog (GET /v1/event-types lists it; POST /v1/event-types adds a type)", src.Topic)
	} else if err != nil {
		return err
	}
	if src.Verify.Type == consign.VerifyStandardWebhooks {
		if err := signing.CheckVerifyKey(src.Verify.Secret); err != nil {
			v.Add("verify.secret", "must be a Standard Webhooks secret (whsec_…) or public key (whpk_…): %s",
				strings.TrimPrefix(err.Error(), "signing: "))
		}
	}
	if p := src.Poll; p != nil {
		// The URL as the first poll will fetch it, placeholders filled.
		if err := s.cfg.ValidateURL(consign.ExpandPollWindow(p.URL, s.now(), s.now(), "cursor", true), s.cfg.InsecureTargets); err != nil {
			v.Add("poll.url", "%s", err.Error())
		}
		if p.Cron != "" {
			if _, err := NextRun(p, s.now()); err != nil {
				v.Add("poll.cron", "%s", err.Error())
			}
		}
	}
	if f := src.From; f != nil {
		checkFrom(&v, f, s.cfg.InsecureTargets)
		if f.TLS != nil {
			f.TLS.Check(&v, s.now())
		}
	}
	return v.Err()
}

// CreateSource validates and stores a new source with a new ingest token. The reply
// carries its verification credentials, as given or generated, this once; poll header
// values are masked.
func (s *Service) CreateSource(ctx context.Context, orgID string, in *SourceInput) (*consign.Source, error) {
	now := s.now()
	src := &consign.Source{ID: consign.NewID(consign.PrefixSource, now), OrgID: orgID, Name: in.Name, Topic: in.Topic,
		CreatedAt: now, UpdatedAt: now}
	if in.Verify.V != nil {
		src.Verify = *in.Verify.V
	}
	if in.Dedupe.V != nil {
		src.Dedupe = *in.Dedupe.V
	}
	if in.Poll.V != nil {
		p := *in.Poll.V
		src.Poll = &p
	}
	if in.From.V != nil {
		f := *in.From.V
		src.From = &f
	}
	src.TypePointer, src.TypeHeader = in.TypePointer, in.TypeHeader
	if _, err := fillSecrets(&src.Verify); err != nil {
		return nil, err
	}
	if err := s.validate(ctx, src); err != nil {
		return nil, err
	}
	src.Token = newToken()
	row, err := s.row(src)
	if err != nil {
		return nil, err
	}
	if src.Poll != nil {
		if row.NextPollAt, err = NextRun(src.Poll, now); err != nil {
			return nil, err
		}
	}
	if err := s.store.SourceInsert(ctx, row); err != nil {
		return nil, err
	}
	s.wakePoller()
	s.wakeConsumers()
	if src.Poll != nil {
		src.PollStatus = &consign.PollStatus{NextRunAt: &row.NextPollAt}
		p := *src.Poll
		p.Headers = consign.MaskHeaders(p.Headers) // given by the client: not echoed
		src.Poll = &p
	}
	if src.From != nil {
		src.From = src.From.Shown()            // given by the client: not echoed
		src.FromStatus = &consign.FromStatus{} // its consumer is starting
	}
	return src, nil
}

// Source returns a source, redacted, with its token (for its ingest URL).
func (s *Service) Source(ctx context.Context, orgID, id string) (*consign.Source, error) {
	row, err := s.store.SourceGet(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	src, err := s.open(row)
	if err != nil {
		return nil, err
	}
	if src.From != nil {
		src.FromStatus = s.fromStatus(src.ID)
	}
	return Redact(src), nil
}

// Sources lists an org's sources, redacted.
func (s *Service) Sources(ctx context.Context, orgID string, p store.Page) ([]*consign.Source, error) {
	if _, err := s.store.OrgGet(ctx, orgID); err != nil {
		return nil, err
	}
	rows, err := s.store.SourceList(ctx, orgID, p)
	if err != nil {
		return nil, err
	}
	out := make([]*consign.Source, 0, len(rows))
	for _, r := range rows {
		src, err := s.open(r)
		if err != nil {
			return nil, err
		}
		if src.From != nil {
			src.FromStatus = s.fromStatus(src.ID)
		}
		out = append(out, Redact(src))
	}
	return out, nil
}

// UpdateSource applies a PATCH: decode decodes the request body over the source's
// current input. A verify object of the same type that leaves a credential out keeps
// the current one; a poll header sent as shown (masked, or consign.Redacted) keeps its
// current value. The
// reply shows credentials only when Consign generated them.
func (s *Service) UpdateSource(ctx context.Context, orgID, id string, decode func(*SourceInput) error) (*consign.Source, error) {
	row, err := s.store.SourceGet(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	cur, err := s.open(row)
	if err != nil {
		return nil, err
	}
	verify, dedupe := cur.Verify, cur.Dedupe
	in := SourceInput{Name: cur.Name, Topic: cur.Topic, Verify: Replace[consign.SourceVerify]{&verify},
		Dedupe: Replace[consign.SourceDedupe]{&dedupe}, TypePointer: cur.TypePointer, TypeHeader: cur.TypeHeader}
	if cur.From != nil {
		f := *cur.From
		f.Brokers = slices.Clone(cur.From.Brokers)
		in.From.V = &f
	}
	if cur.Poll != nil {
		p := *cur.Poll
		p.Headers = maps.Clone(cur.Poll.Headers)
		in.Poll.V = &p
	}
	if err := decode(&in); err != nil {
		return nil, err
	}
	next := *cur
	next.Name, next.Topic, next.Verify, next.Dedupe, next.Poll = in.Name, in.Topic, consign.SourceVerify{}, consign.SourceDedupe{}, in.Poll.V
	next.From, next.TypePointer, next.TypeHeader = in.From.V, in.TypePointer, in.TypeHeader
	if next.From != nil && cur.From != nil && next.From.URL == consign.MaskURL(cur.From.URL) {
		next.From.URL = cur.From.URL // sent back as shown: keep the stored credentials
	}
	if next.From != nil && next.From.TLS != nil && next.From.TLS.AsShown() && cur.From != nil && cur.From.TLS != nil {
		next.From.TLS = cur.From.TLS // likewise the TLS settings
	}
	if in.Verify.V != nil {
		next.Verify = *in.Verify.V
		if next.Verify.Type == cur.Verify.Type {
			if next.Verify.Secret == "" && next.Verify.Token == "" {
				next.Verify.Secret = cur.Verify.Secret
			}
			if next.Verify.Password == "" {
				next.Verify.Password = cur.Verify.Password
			}
		}
	}
	if in.Dedupe.V != nil {
		next.Dedupe = *in.Dedupe.V
	}
	if next.Poll != nil && cur.Poll != nil {
		next.Poll.Headers = consign.KeepMasked(next.Poll.Headers, cur.Poll.Headers)
		for k, v := range next.Poll.Headers {
			if v == consign.Redacted {
				if old, ok := headerValue(cur.Poll.Headers, k); ok {
					next.Poll.Headers[k] = old
				}
			}
		}
	}
	generated, err := fillSecrets(&next.Verify)
	if err != nil {
		return nil, err
	}
	if err := s.validate(ctx, &next); err != nil {
		return nil, err
	}
	now := s.now()
	next.UpdatedAt = now
	nrow, err := s.row(&next)
	if err != nil {
		return nil, err
	}
	nrow.NextPollAt = row.NextPollAt
	switch {
	case next.Poll == nil:
		nrow.NextPollAt = time.Time{}
	case cur.Poll == nil || !samePoll(cur.Poll, next.Poll):
		if nrow.NextPollAt, err = NextRun(next.Poll, now); err != nil {
			return nil, err
		}
	}
	if err := s.store.SourceUpdate(ctx, nrow); err != nil {
		return nil, err
	}
	s.wakePoller()
	s.wakeConsumers()
	if fresh, err := s.store.SourceGet(ctx, orgID, id); err == nil {
		next.PollStatus = fresh.PollStatus
	}
	if next.From != nil {
		next.FromStatus = s.fromStatus(id)
	}
	out := Redact(&next)
	if generated {
		out.Verify.Secret, out.Verify.Password = next.Verify.Secret, next.Verify.Password
	}
	return out, nil
}

func headerValue(h map[string]string, name string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// samePoll reports whether two normalized polls are configured alike, so an update that
// leaves the poll alone keeps its schedule.
func samePoll(a, b *consign.SourcePoll) bool {
	x, y := *a, *b
	x.Headers, y.Headers = normHeaders(a.Headers), normHeaders(b.Headers)
	return reflect.DeepEqual(x, y)
}

func normHeaders(h map[string]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	return h
}

// RotateToken gives a source a new ingest token; the old URL stops working at once.
func (s *Service) RotateToken(ctx context.Context, orgID, id string) (*consign.Source, error) {
	row, err := s.store.SourceGet(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	src, err := s.open(row)
	if err != nil {
		return nil, err
	}
	src.Token = newToken()
	src.UpdatedAt = s.now()
	nrow, err := s.row(src)
	if err != nil {
		return nil, err
	}
	nrow.NextPollAt = row.NextPollAt
	if err := s.store.SourceUpdate(ctx, nrow); err != nil {
		return nil, err
	}
	return Redact(src), nil
}

// DeleteSource removes a source and its receipts. Events made from them stay.
func (s *Service) DeleteSource(ctx context.Context, orgID, id string) error {
	if err := s.store.SourceDelete(ctx, orgID, id); err != nil {
		return err
	}
	s.wakeConsumers()
	s.failMu.Lock()
	delete(s.fails, id)
	s.failMu.Unlock()
	return nil
}

// Receipts lists a source's receipts.
func (s *Service) Receipts(ctx context.Context, orgID, sourceID string, f store.ReceiptFilter) ([]*consign.Receipt, error) {
	if _, err := s.store.SourceGet(ctx, orgID, sourceID); err != nil {
		return nil, err
	}
	return s.store.ReceiptList(ctx, orgID, sourceID, f)
}

// Receipt returns one receipt of a source.
func (s *Service) Receipt(ctx context.Context, orgID, sourceID, id string) (*consign.Receipt, error) {
	return s.store.ReceiptGet(ctx, orgID, sourceID, id)
}
