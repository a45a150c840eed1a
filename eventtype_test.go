package consign_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

func TestValidVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v  string
		ok bool
	}{
		{"2026-12-01", true},
		{"2024-02-29", true},
		{"2026-02-29", false}, // not a leap year
		{"2026-6-1", false},
		{"2026-06-01T00:00:00Z", false},
		{" 2026-06-01", false},
		{"", false},
		{"latest", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.ok, consign.ValidVersion(tt.v) == "", "%q: %s", tt.v, consign.ValidVersion(tt.v))
	}
}

// FuzzValidVersion: what ValidVersion accepts is exactly the dates written YYYY-MM-DD,
// and for those, comparing the strings (what the dispatcher does to pick the downgrades
// after a pin) orders them as the dates they name.
func FuzzValidVersion(f *testing.F) {
	f.Add("2026-12-01", "2026-06-01")
	f.Add("0999-01-01", "1000-01-01")
	f.Add("2026-13-01", "x")
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, ea := time.Parse(time.DateOnly, a)
		okA := ea == nil && ta.Format(time.DateOnly) == a
		require.Equal(t, okA, consign.ValidVersion(a) == "", "%q", a)
		tb, eb := time.Parse(time.DateOnly, b)
		if okA && eb == nil && tb.Format(time.DateOnly) == b {
			require.Equal(t, ta.Before(tb), a < b, "%q < %q", a, b)
		}
	})
}

// TestValidTypeName: what a client reads for each kind of bad type name.
func TestValidTypeName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"order.fulfilled":        "",
		"a":                      "",
		"Order_2-x.b.c":          "",
		"":                       "is required",
		strings.Repeat("a", 101): "must be at most 100 characters",
		"order.":                 "must be dot-separated words such as order.fulfilled",
		".order":                 "must be dot-separated words such as order.fulfilled",
		"order..fulfilled":       "must be dot-separated words such as order.fulfilled",
		"order.ful filled":       "may contain only letters, digits, '_', '-' and '.'",
		"order.fülfilled":        "may contain only letters, digits, '_', '-' and '.'",
	} {
		require.Equal(t, want, consign.ValidTypeName(name), "%q", name)
	}
}
