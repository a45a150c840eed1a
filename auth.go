package consign

import (
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Auth types.
const (
	AuthSignature = "signature" // no credential: the signature alone proves the origin
	AuthToken     = "token"     // "Auth: <token>" (ReadyCloud), not signed
	AuthBasic     = "basic"     // "Authorization: Basic …" (RFC 7617)
	AuthBearer    = "bearer"    // "Authorization: Bearer <token>", a fixed token
	AuthOAuth2    = "oauth2"    // "Authorization: Bearer <access token>" of OAuth 2.0 client credentials
)

// How an oauth2 client presents its credentials to the token endpoint.
const (
	AuthStyleHeader = "header" // HTTP Basic (RFC 6749 §2.3.1, the default)
	AuthStyleParams = "params" // client_id and client_secret in the form body
)

// maxScopes bounds an oauth2 auth's scopes.
const maxScopes = 50

// Auth says how requests to an endpoint prove they come from Consign, besides its
// signature. Password, ClientSecret and a bearer Token are credentials: sealed at rest
// and shown only masked (Masked). A token endpoint's Token is shown, as ReadyCloud's
// API shows it.
type Auth struct {
	Type string `json:"type"`
	// Token is the token of type token (generated when left empty) or bearer.
	Token string `json:"token,omitempty"`
	// Username and Password are type basic's.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// TokenURL, ClientID and ClientSecret are OAuth 2.0 client credentials (type
	// oauth2): the access token fetched from TokenURL is cached until shortly before it
	// expires and dropped after a 401 from the endpoint.
	TokenURL     string   `json:"token_url,omitempty"`
	ClientID     string   `json:"client_id,omitempty"`
	ClientSecret string   `json:"client_secret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	// Audience, when set, is sent to the token endpoint as the audience parameter
	// (Auth0, Okta).
	Audience string `json:"audience,omitempty"`
	// AuthStyle is how the client authenticates to the token endpoint: "header"
	// (default) or "params".
	AuthStyle string `json:"auth_style,omitempty"`
}

// Credential returns the field that holds the auth's secret, the one value sealed at
// rest: the token, the password or the client secret; nil for type signature.
func (a *Auth) Credential() *string {
	switch a.Type {
	case AuthToken, AuthBearer:
		return &a.Token
	case AuthBasic:
		return &a.Password
	case AuthOAuth2:
		return &a.ClientSecret
	}
	return nil
}

// Masked returns a copy of a fit for a reply: its credential masked, but for a token
// endpoint's token, which the receiver's owner reads back (ReadyCloud).
func (a Auth) Masked() Auth {
	if c := a.Credential(); c != nil && a.Type != AuthToken && *c != "" {
		*c = Mask(*c)
	}
	a.Scopes = append([]string(nil), a.Scopes...)
	return a
}

// SetsAuthorization reports whether the auth type sends an Authorization header.
func (a *Auth) SetsAuthorization() bool {
	return a.Type == AuthBasic || a.Type == AuthBearer || a.Type == AuthOAuth2
}

// normalize fills the auth's defaults and checks it against the endpoint's headers.
func (a *Auth) normalize(v *Validation, headers map[string]string) {
	fields := map[string]string{"token": a.Token, "username": a.Username, "password": a.Password,
		"token_url": a.TokenURL, "client_id": a.ClientID, "client_secret": a.ClientSecret,
		"audience": a.Audience, "auth_style": a.AuthStyle}
	if len(a.Scopes) > 0 {
		fields["scopes"] = "set"
	}
	// used names the fields of the type; any other that is set is refused.
	used := func(names ...string) {
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			if fields[name] != "" && !slices.Contains(names, name) {
				v.Add("auth."+name, `is not used with "type": %q`, a.Type)
			}
		}
	}
	required := func(field, value, what string) {
		if value == "" {
			v.Add("auth."+field, "is required with %q auth: %s", a.Type, what)
		}
	}
	switch a.Type {
	case "":
		a.Type = AuthSignature
		fallthrough
	case AuthSignature:
		used()
	case AuthToken:
		used("token")
		if msg := validHeaderValue(a.Token); msg != "" {
			v.Add("auth.token", "%s", msg)
		}
	case AuthBearer:
		used("token")
		required("token", a.Token, "the token the partner gave you, sent as Authorization: Bearer <token>")
		if msg := validHeaderValue(a.Token); msg != "" {
			v.Add("auth.token", "%s", msg)
		}
	case AuthBasic:
		used("username", "password")
		required("username", a.Username, "the user name the partner gave you")
		required("password", a.Password, "the password the partner gave you")
		if strings.Contains(a.Username, ":") {
			v.Add("auth.username", `cannot hold ":" (HTTP Basic separates the user name from the password with it)`)
		}
		checkCredential(v, "auth.username", a.Username)
		checkCredential(v, "auth.password", a.Password)
	case AuthOAuth2:
		used("token_url", "client_id", "client_secret", "scopes", "audience", "auth_style")
		a.normalizeOAuth2(v)
	default:
		v.Add("auth.type", `must be "signature", "token", "basic", "bearer" or "oauth2"`)
		return
	}
	if a.SetsAuthorization() && headers["Authorization"] != "" {
		v.Add("headers", `"Authorization" is set by auth type %q: remove it from headers`, a.Type)
	}
}

func (a *Auth) normalizeOAuth2(v *Validation) {
	a.TokenURL = NormalizeURL(strings.TrimSpace(a.TokenURL))
	if a.TokenURL == "" {
		v.Add("auth.token_url", "is required with \"oauth2\" auth: the partner's OAuth 2.0 token endpoint, such as https://auth.partner.example/oauth/token")
	} else if u, err := url.Parse(a.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.Add("auth.token_url", "must be an https URL such as https://auth.partner.example/oauth/token")
	} else if u.User != nil {
		v.Add("auth.token_url", "must not carry credentials: give them as client_id and client_secret")
	}
	if a.ClientID == "" {
		v.Add("auth.client_id", "is required with \"oauth2\" auth: the client id the partner registered for you")
	}
	if a.ClientSecret == "" {
		v.Add("auth.client_secret", "is required with \"oauth2\" auth: the client secret the partner gave you")
	}
	checkCredential(v, "auth.client_id", a.ClientID)
	checkCredential(v, "auth.client_secret", a.ClientSecret)
	if len(a.Scopes) > maxScopes {
		v.Add("auth.scopes", "at most %d scopes", maxScopes)
	}
	for _, s := range a.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r == 0x7f }) {
			v.Add("auth.scopes", "%q is not a scope: scopes are printable characters without spaces, quotes or backslashes (RFC 6749 §3.3)", s)
			break
		}
	}
	if len(a.Audience) > 1000 {
		v.Add("auth.audience", "must be at most 1000 characters")
	}
	switch a.AuthStyle {
	case "":
		a.AuthStyle = AuthStyleHeader
	case AuthStyleHeader, AuthStyleParams:
	default:
		v.Add("auth.auth_style", `must be "header" (HTTP Basic, the default) or "params" (in the form body)`)
	}
}

// checkCredential checks a value that travels in a header or a form.
func checkCredential(v *Validation, field, s string) {
	if msg := validHeaderValue(s); msg != "" {
		v.Add(field, "%s", msg)
	}
}
