package consign

import (
	"strings"
	"time"
)

// Role is what an org is on a marketplace; it limits the topics its endpoints may take
// (Modern Dropship's "available for").
type Role string

// Roles.
const (
	RoleBuyer  Role = "buyer"
	RoleSeller Role = "seller"
	RoleBoth   Role = "both"
)

// Org is a tenant: everything else belongs to exactly one org.
type Org struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Branding is how the partner portal presents the org; nil: Consign's own header.
	Branding  *Branding `json:"branding,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks the fields a client sets and fills defaults.
func (o *Org) Validate() error {
	var v Validation
	o.Name = strings.TrimSpace(o.Name)
	if o.Name == "" {
		v.Add("name", "is required")
	} else if len(o.Name) > 200 {
		v.Add("name", "must be at most 200 characters")
	}
	switch o.Role {
	case "":
		o.Role = RoleBoth
	case RoleBuyer, RoleSeller, RoleBoth:
	default:
		v.Add("role", `must be "buyer", "seller" or "both"`)
	}
	if o.Branding != nil {
		o.Branding.normalize(&v)
		if *o.Branding == (Branding{}) {
			o.Branding = nil
		}
	}
	return v.Err()
}

// May reports whether an org of this role may subscribe to a topic available for the
// given roles (empty: everyone).
func (r Role) May(availableFor []Role) bool {
	if len(availableFor) == 0 || r == RoleBoth || r == "" {
		return true
	}
	for _, a := range availableFor {
		if a == r || a == RoleBoth {
			return true
		}
	}
	return false
}

// APIKey is a credential. OrgID is empty for the admin key, which may act on every org.
// The key's value is shown once at creation; only its hash is stored.
type APIKey struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"org_id,omitempty"`
	Name      string    `json:"name"`
	Key       string    `json:"key,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Admin reports whether the key may act on every org.
func (k *APIKey) Admin() bool { return k.OrgID == "" }
