package consign_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/consign-dev/consign"
)

// FuzzBranding: whatever a client sends as branding, what is accepted is safe to put in
// the portal's header: a bounded one-line name, a #rrggbb colour, and a logo that is an
// https URL or a base64 data:image URL without characters that end an attribute.
// Accepting is stable: accepted branding is accepted again unchanged.
func FuzzBranding(f *testing.F) {
	f.Add("Acme Partner Hub", "https://cdn.acme.example/logo.png", "#0A7D4F")
	f.Add("", "data:image/png;base64,iVBORw0KGgo=", "")
	f.Add("x\ny", "javascript:alert(1)", "red")
	f.Add("é", "data:text/html;base64,PHNjcmlwdD4=", "#12345g")
	f.Add("a", `https://x.example/"><script>`, "#fff")
	f.Add("a", "data:image/png;base64,iVBO\nRw0KGgo=", "#fff")
	color := regexp.MustCompile(`^#[0-9a-f]{6}$`)
	f.Fuzz(func(t *testing.T, name, logo, col string) {
		o := &consign.Org{Name: "Acme", Branding: &consign.Branding{Name: name, LogoURL: logo, Color: col}}
		if err := o.Validate(); err != nil {
			return
		}
		b := o.Branding
		if b == nil {
			return // all three empty
		}
		if utf8.RuneCountInString(b.Name) > consign.MaxBrandingName || strings.ContainsAny(b.Name, "\n\r\x00") {
			t.Fatalf("accepted name %q", b.Name)
		}
		if b.Color != "" && !color.MatchString(b.Color) {
			t.Fatalf("accepted colour %q", b.Color)
		}
		if b.LogoURL != "" {
			if !strings.HasPrefix(b.LogoURL, "https://") && !strings.HasPrefix(b.LogoURL, "data:image/") {
				t.Fatalf("accepted logo %q", b.LogoURL)
			}
			if strings.ContainsAny(b.LogoURL, "\"'<> \n") {
				t.Fatalf("accepted logo with a delimiter: %q", b.LogoURL)
			}
		}
		again := *b
		o2 := &consign.Org{Name: "Acme", Branding: &again}
		if err := o2.Validate(); err != nil || *o2.Branding != *b {
			t.Fatalf("accepted branding %+v is not accepted again unchanged: %v, %+v", *b, err, o2.Branding)
		}
	})
}
