package consign_test

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

func TestTopicMatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, typ string
		want         bool
	}{
		{"order.fulfilled", "order.fulfilled", true},
		{"order.fulfilled", "order.cancelled", false},
		{"order.*", "order.fulfilled", true},
		{"order.*", "order.line.cancelled", true},
		{"order.*", "orders.updated", false},
		{"order.*", "purchase_order.created", false},
		{"*", "product.inventoryChanged", true},
		{"*", "consign.endpoint.disabled", false},
		{"consign.*", "consign.endpoint.disabled", true},
		{"consign.delivery.exhausted", "consign.delivery.exhausted", true},
	} {
		require.Equal(t, tc.want, consign.TopicMatches(tc.pattern, tc.typ), "%s ~ %s", tc.pattern, tc.typ)
	}
}

func TestValidTopic(t *testing.T) {
	t.Parallel()
	for topic, ok := range map[string]bool{
		"order.fulfilled": true, "product.inventoryChanged": true, "order.*": true, "*": true, "contact_address.updated": true,
		"": false, "order.": false, ".order": false, "order..x": false, "order.*.x": false, "or der": false, "*.*": false,
		strings.Repeat("a", 101): false,
	} {
		require.Equal(t, ok, consign.ValidTopic(topic) == "", "%q: %s", topic, consign.ValidTopic(topic))
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "72h": 72 * time.Hour, "3d": 72 * time.Hour, "1h30m": 90 * time.Minute} {
		got, err := consign.ParseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "soon", "3 days", "-d", "99999d"} {
		_, err := consign.ParseDuration(in)
		require.Error(t, err, in)
	}
	var d consign.Duration
	require.NoError(t, json.Unmarshal([]byte(`"5m"`), &d))
	b, err := json.Marshal(d)
	require.NoError(t, err)
	require.Equal(t, `"5m0s"`, string(b))
	var typ *json.UnmarshalTypeError
	require.ErrorAs(t, json.Unmarshal([]byte(`"forever"`), &d), &typ, "a bad duration is a type error the decoder can name the field of")
}

func TestNewIDSortsByTime(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := consign.NewID(consign.PrefixEvent, t0)
	b := consign.NewID(consign.PrefixEvent, t0.Add(time.Millisecond))
	require.True(t, consign.HasPrefix(a, consign.PrefixEvent))
	require.Len(t, a, len("evt_")+26)
	require.Less(t, a, b)
	require.NotEqual(t, a, consign.NewID(consign.PrefixEvent, t0), "random part")
	require.Regexp(t, `^evt_[0-9A-HJKMNP-TV-Z]{26}$`, a)

	// In one millisecond, from any number of goroutines, IDs increase in the order made
	// (a millisecond later than any other test's, which is the case the rule covers).
	t1 := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				mu.Lock()
				ids = append(ids, consign.NewID(consign.PrefixEvent, t1))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.True(t, slices.IsSorted(ids), "IDs made in one millisecond sort in the order they were made")
	require.Len(t, slices.Compact(slices.Clone(ids)), len(ids), "no ID twice")
}

func TestEndpointNormalize(t *testing.T) {
	t.Parallel()
	e := &consign.Endpoint{URL: " https://example.com/hook ", Topics: []string{"order.*", "order.*"}, Method: "put",
		Headers: map[string]string{"x-vendor-key": "k"}}
	require.NoError(t, e.Normalize())
	require.Equal(t, "https://example.com/hook", e.URL)
	require.Equal(t, []string{"order.*"}, e.Topics)
	require.Equal(t, "PUT", e.Method)
	require.Equal(t, map[string]string{"X-Vendor-Key": "k"}, e.Headers)
	require.Equal(t, consign.FormatEnvelope, e.PayloadFormat)
	require.Equal(t, consign.AuthSignature, e.Auth.Type)
	require.Equal(t, consign.Duration(72*time.Hour), e.Retry.MaxAge)
	require.Equal(t, consign.Duration(72*time.Hour), e.FailurePolicy.DisableAfter)

	bad := &consign.Endpoint{URL: "https://example.com", Topics: []string{"bad topic"}, Method: "GET",
		Headers: map[string]string{"Webhook-Signature": "x", "X-Ok": "a\nb"}, PayloadFormat: "xml", Ordering: "global",
		RateLimit: -1, FailurePolicy: consign.FailurePolicy{MaxFailures: 3}}
	err := bad.Normalize()
	var ce *consign.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, consign.EINVALID, ce.Code)
	var fields []string
	for _, f := range ce.Fields {
		fields = append(fields, f.Field)
	}
	require.Subset(t, fields, []string{"topics", "method", "headers", "payload_format", "ordering", "rate_limit", "failure_policy"})
}

func TestSensitiveHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"Authorization", true},
		{"authorization", true},
		{"Auth", true},
		{"Cookie", true},
		{"Proxy-Authorization", true},
		{"X-Access-Token", true},
		{"X-SECRET-Key", true},
		{"X-Api-Key", true},
		{"Apikey", true},
		{"X-Shopify-Password", true},
		{"Content-Type", false},
		{"Author", false},
		{"Webhook-Signature", false},
		{"X-Tok", false},
		{"", false},
		{"X-" + strings.Repeat("A", 200) + "-Token", true},
		{"X-" + strings.Repeat("A", 200), false},
	} {
		require.Equal(t, tc.want, consign.SensitiveHeader(tc.name), tc.name)
	}
	// It runs for every header of every attempt.
	require.Zero(t, testing.AllocsPerRun(100, func() { consign.SensitiveHeader("X-Webhook-Timestamp") }))
}
