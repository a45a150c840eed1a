// Package manage is the business layer of Consign's configuration: orgs, API keys, the
// event-type catalog, endpoints and their secrets. The JSON API and the dashboard both
// call it, so every rule (validation, defaults, sealing secrets, showing a secret once)
// is written once, here, above the store.
package manage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/secretbox"
	"github.com/consign-dev/consign/internal/store"
)

// Config configures the Service. Zero fields take their defaults (WithDefaults); Validate
// says which settings cannot work.
type Config struct {
	// InsecureTargets allows http:// and non-public endpoint URLs (development, tests).
	InsecureTargets bool
	// Now is the clock; default time.Now.
	Now func() time.Time
	// ValidateURL checks an endpoint URL at creation (no DNS); required.
	ValidateURL func(raw string, insecure bool) error
	// Emit, if set, publishes Consign's operational events (endpoint disabled/enabled).
	Emit func(ctx context.Context, orgID, typ string, payload any) error
	// Logger; default slog.Default().
	Logger *slog.Logger
	// TypeChanged, if set, is told the name of an event type that changed (its schema or
	// versions), so that this node's caches of the catalog read it again at once.
	TypeChanged func(name string)
}

// Service implements the configuration operations.
type Service struct {
	store store.Store
	box   *secretbox.Box
	cfg   Config

	keysMu sync.Mutex
	keys   map[string]cachedKey // by hash
}

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every setting of c that cannot work, naming each.
func (c Config) Validate() error {
	if c.ValidateURL == nil {
		return errors.New("ValidateURL is not set; it checks every endpoint URL")
	}
	return nil
}

// New returns a Service. cfg gets its defaults; New panics when it does not pass
// Validate (the composition root validates its settings first).
func New(s store.Store, box *secretbox.Box, cfg Config) *Service {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("manage: invalid settings: " + err.Error())
	}
	return &Service{store: s, box: box, cfg: cfg, keys: map[string]cachedKey{}}
}

// emit publishes an operational event; a failure is logged, never returned: the change
// that caused it has been made.
func (s *Service) emit(ctx context.Context, orgID, typ string, payload any) {
	if s.cfg.Emit == nil {
		return
	}
	if err := s.cfg.Emit(ctx, orgID, typ, payload); err != nil {
		s.cfg.Logger.Error("emit operational event", "type", typ, "org", orgID, "err", err)
	}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// KeyPrefix starts every API key value, so that leaked keys are easy to scan for.
const KeyPrefix = "csk_"

// HashKey is how API keys are stored: SHA-256 of the value. Keys are 256 random bits, so
// a slow password hash would add latency to every request and no security.
func HashKey(value string) []byte {
	h := sha256.Sum256([]byte(value))
	return h[:]
}

func newKeyValue() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Authenticate returns the key whose value is presented, or EUNAUTHORIZED.
func (s *Service) Authenticate(ctx context.Context, value string) (*consign.APIKey, error) {
	if value == "" {
		return nil, consign.Errorf(consign.EUNAUTHORIZED, "missing API key: send Authorization: Bearer <key>")
	}
	hash := HashKey(value)
	now := s.cfg.Now()
	s.keysMu.Lock()
	c, ok := s.keys[string(hash)]
	s.keysMu.Unlock()
	if ok && now.Before(c.until) {
		return c.key, nil
	}
	k, err := s.store.KeyByHash(ctx, hash)
	if consign.ErrorCode(err) == consign.ENOTFOUND {
		return nil, consign.Errorf(consign.EUNAUTHORIZED, "invalid API key")
	} else if err != nil {
		return nil, err
	}
	s.keysMu.Lock()
	if len(s.keys) > 10000 {
		clear(s.keys)
	}
	s.keys[string(hash)] = cachedKey{key: k, until: now.Add(KeyCacheTTL)}
	s.keysMu.Unlock()
	return k, nil
}

// KeyCacheTTL is how long a verified key is trusted without asking the store: every API
// request is authenticated, and a store read for each was a sixth of a small request's
// cost; one read per key and second is not. A key deleted on this node (DeleteKey,
// DeleteOrg) stops at once; on other nodes sharing the store within this time.
const KeyCacheTTL = time.Second

type cachedKey struct {
	key   *consign.APIKey
	until time.Time
}

// DeleteKey removes an org's key; it stops working at once on this node and within
// KeyCacheTTL on the others.
func (s *Service) DeleteKey(ctx context.Context, orgID, id string) error {
	if err := s.store.KeyDelete(ctx, orgID, id); err != nil {
		return err
	}
	s.forgetKeys(func(k *consign.APIKey) bool { return k.ID == id })
	return nil
}

// DeleteOrg removes an org and everything it owns; its keys stop working at once on this
// node and within KeyCacheTTL on the others.
func (s *Service) DeleteOrg(ctx context.Context, id string) error {
	if err := s.store.OrgDelete(ctx, id); err != nil {
		return err
	}
	s.forgetKeys(func(k *consign.APIKey) bool { return k.OrgID == id })
	return nil
}

// forgetKeys drops the cached keys that match, so that the next request with one of
// them asks the store.
func (s *Service) forgetKeys(match func(*consign.APIKey) bool) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	for h, c := range s.keys {
		if match(c.key) {
			delete(s.keys, h)
		}
	}
}

// EnsureAdminKey makes sure an admin key exists. With fromEnv set, that value becomes an
// admin key (idempotently). Otherwise, on a store without an admin key a new one is made
// and its value returned, to be shown once; "" means nothing new was made.
func (s *Service) EnsureAdminKey(ctx context.Context, fromEnv string) (string, error) {
	if fromEnv != "" {
		if err := CheckAdminKey(fromEnv); err != nil {
			return "", consign.Errorf(consign.EINVALID, "CONSIGN_ADMIN_KEY %v", err)
		}
		if _, err := s.store.KeyByHash(ctx, HashKey(fromEnv)); err == nil {
			return "", nil
		} else if consign.ErrorCode(err) != consign.ENOTFOUND {
			return "", err
		}
		k := &consign.APIKey{ID: consign.NewID(consign.PrefixKey, s.now()), Name: "admin (CONSIGN_ADMIN_KEY)", CreatedAt: s.now()}
		return "", s.store.KeyInsert(ctx, k, HashKey(fromEnv))
	}
	exists, err := s.store.AdminKeyExists(ctx)
	if err != nil || exists {
		return "", err
	}
	value := newKeyValue()
	k := &consign.APIKey{ID: consign.NewID(consign.PrefixKey, s.now()), Name: "admin", CreatedAt: s.now()}
	return value, s.store.KeyInsert(ctx, k, HashKey(value))
}

// EnsureCatalog adds the built-in event types that are missing.
func (s *Service) EnsureCatalog(ctx context.Context) error {
	ts := consign.BuiltinEventTypes()
	for i := range ts {
		ts[i].Builtin = true
		ts[i].CreatedAt, ts[i].UpdatedAt = s.now(), s.now()
	}
	return s.store.EventTypeEnsure(ctx, ts)
}

// CreateOrg validates and stores a new org.
func (s *Service) CreateOrg(ctx context.Context, o *consign.Org) error {
	if err := o.Validate(); err != nil {
		return err
	}
	o.ID = consign.NewID(consign.PrefixOrg, s.now())
	o.CreatedAt, o.UpdatedAt = s.now(), s.now()
	return s.store.OrgInsert(ctx, o)
}

// UpdateOrg validates and saves an org. A new role that the org's endpoints' topics do
// not allow is refused (ECONFLICT, naming each endpoint and topic): fan-out would stop
// sending them without a word, so the caller changes those endpoints first.
func (s *Service) UpdateOrg(ctx context.Context, o *consign.Org) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := s.checkRole(ctx, o); err != nil {
		return err
	}
	o.UpdatedAt = s.now()
	return s.store.OrgUpdate(ctx, o)
}

// checkRole refuses a role change that would leave topics subscribed by name that the
// new role may not take. Wildcards are not judged: they match what the role allows.
func (s *Service) checkRole(ctx context.Context, o *consign.Org) error {
	old, err := s.store.OrgGet(ctx, o.ID)
	if err != nil || old.Role == o.Role || o.Role == consign.RoleBoth {
		return err
	}
	eps, err := s.store.EndpointListAll(ctx, o.ID)
	if err != nil {
		return err
	}
	types := map[string]*consign.EventType{}
	var fields []consign.FieldError
	for _, ep := range eps {
		var refused []string
		for _, t := range ep.Topics {
			if t == "*" || strings.HasSuffix(t, ".*") {
				continue
			}
			et, ok := types[t]
			if !ok {
				if et, err = s.store.EventTypeGet(ctx, t); consign.ErrorCode(err) == consign.ENOTFOUND {
					et = nil
				} else if err != nil {
					return err
				}
				types[t] = et
			}
			if et != nil && !o.Role.May(et.AvailableFor) {
				refused = append(refused, fmt.Sprintf("%s (%s only)", t, rolesText(et.AvailableFor)))
			}
		}
		if len(refused) > 0 {
			fields = append(fields, consign.FieldError{Field: "role",
				Message: fmt.Sprintf("endpoint %s (%s) takes %s", ep.ID, ep.URL, strings.Join(refused, ", "))})
		}
	}
	if len(fields) == 0 {
		return nil
	}
	msg := fmt.Sprintf("a %s may not take topics that %d of this org's endpoints subscribe to: %s", o.Role, len(fields), fields[0].Message)
	if len(fields) > 1 {
		msg += fmt.Sprintf(" (and %d more, listed in errors)", len(fields)-1)
	}
	return &consign.Error{Code: consign.ECONFLICT, Message: msg + "; remove those topics from the endpoints (or delete them) first, then change the role", Fields: fields}
}

// CreateKey makes an org key; its value is in the returned key, once.
func (s *Service) CreateKey(ctx context.Context, orgID, name string) (*consign.APIKey, error) {
	name = strings.TrimSpace(name)
	if len(name) > 200 {
		return nil, consign.Invalid("name", "must be at most 200 characters")
	}
	if _, err := s.store.OrgGet(ctx, orgID); err != nil {
		return nil, err
	}
	k := &consign.APIKey{ID: consign.NewID(consign.PrefixKey, s.now()), OrgID: orgID, Name: name, CreatedAt: s.now()}
	value := newKeyValue()
	if err := s.store.KeyInsert(ctx, k, HashKey(value)); err != nil {
		return nil, err
	}
	k.Key = value
	return k, nil
}

// newToken returns a random token for "Auth: <token>" endpoints, 30 hex characters as
// ReadyCloud issues them.
func newToken() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Service) seal(plain string) []byte { return s.box.Seal([]byte(plain)) }

func (s *Service) open(sealed []byte) (string, error) {
	b, err := s.box.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("open sealed secret (is CONSIGN_ENCRYPTION_KEY the one the data was written with?): %w", err)
	}
	return string(b), nil
}
