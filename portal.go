package consign

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// PortalLink is a one-time link that signs a browser into the dashboard for one org
// only (the partner portal). Its token is shown once, in the URL of the creation reply;
// only the token's hash is stored.
type PortalLink struct {
	ID    string `json:"id"`
	OrgID string `json:"org_id"`
	// ReadOnly sessions see everything the portal shows and change nothing.
	ReadOnly  bool       `json:"read_only"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// Branding is how the partner portal presents an org in its header: a name instead of
// Consign's, a logo and an accent colour. Every field is optional.
type Branding struct {
	// Name is shown in the portal's header; at most MaxBrandingName characters.
	Name string `json:"name"`
	// LogoURL is an https:// URL of an image, or a data:image/…;base64 URL of at most
	// MaxLogoData bytes of image.
	LogoURL string `json:"logo_url"`
	// Color is the header's accent colour as #rrggbb.
	Color string `json:"color"`
}

// Limits of Branding.
const (
	MaxBrandingName = 80
	MaxLogoURL      = 2048     // an https logo URL, in bytes
	MaxLogoData     = 32 << 10 // a data: logo's decoded image, in bytes
)

var brandColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// logoTypes are the image types a data: logo may have. SVG is safe here: the portal
// shows the logo with <img>, where an SVG runs no script.
var logoTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"}

// normalize trims and checks the branding's fields, naming each as branding.<field>.
func (b *Branding) normalize(v *Validation) {
	b.Name = strings.TrimSpace(b.Name)
	b.LogoURL = strings.TrimSpace(b.LogoURL)
	b.Color = strings.ToLower(strings.TrimSpace(b.Color))
	if n := utf8.RuneCountInString(b.Name); n > MaxBrandingName {
		v.Add("branding.name", "must be at most %d characters (it has %d)", MaxBrandingName, n)
	} else if !utf8.ValidString(b.Name) || strings.ContainsFunc(b.Name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		v.Add("branding.name", "must be printable text on one line")
	}
	if b.Color != "" && !brandColor.MatchString(b.Color) {
		v.Add("branding.color", `must be a colour as "#rrggbb", such as "#0a7d4f"`)
	}
	if b.LogoURL != "" {
		if msg := checkLogo(b.LogoURL); msg != "" {
			v.Add("branding.logo_url", "%s", msg)
		}
	}
}

// checkLogo says what is wrong with a logo URL, or "".
func checkLogo(raw string) string {
	if rest, ok := strings.CutPrefix(raw, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		typ, enc, _ := strings.Cut(meta, ";")
		switch {
		case !ok || enc != "base64":
			return "a data: logo must be base64, as data:image/png;base64,…"
		case !slices.Contains(logoTypes, strings.ToLower(typ)):
			return "a data: logo must be an image: " + strings.Join(logoTypes, ", ")
		case base64.StdEncoding.DecodedLen(len(data)) > MaxLogoData+3:
			return "a data: logo must be at most 32 KiB of image; host a larger one at an https:// URL"
		}
		if strings.ContainsFunc(data, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '=')
		}) {
			return "the data: logo's base64 may hold only A–Z, a–z, 0–9, +, / and = (no spaces or line breaks)"
		}
		img, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return "the data: logo's base64 does not decode: " + err.Error()
		}
		if len(img) == 0 || len(img) > MaxLogoData {
			return "a data: logo must hold an image of 1 byte to 32 KiB"
		}
		return ""
	}
	if len(raw) > MaxLogoURL {
		return "must be at most 2048 characters; a data: logo is bounded by the size of its image"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return "must be an https:// URL of an image (such as https://cdn.example.com/logo.png) or a data:image/…;base64 URL"
	case u.User != nil:
		return "must not carry credentials"
	case strings.ContainsAny(raw, " \"'<>\\`") || strings.ContainsFunc(raw, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return "must not hold spaces, quotes, angle brackets or control characters: percent-encode them"
	}
	return ""
}

// LogoOrigin returns the scheme and host of an https logo URL, for a page's
// Content-Security-Policy; "" for a data: logo or none.
func (b *Branding) LogoOrigin() string {
	if b == nil || !strings.HasPrefix(b.LogoURL, "https://") {
		return ""
	}
	u, err := url.Parse(b.LogoURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return "https://" + u.Host
}
