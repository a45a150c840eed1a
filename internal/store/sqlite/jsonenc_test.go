package sqlite

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

var attemptRequest = consign.AttemptRequest{Method: "POST", URL: "https://erp.example.com/hooks?tenant=acme&x=<1>", Headers: map[string]string{
	"Content-Type": "application/json", "User-Agent": consign.UserAgent, "Webhook-Id": "evt_01KAQ3M8Y6X1T9V2B4N5C7D8E9",
	"Webhook-Timestamp": "1763905123", "Webhook-Signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
	"X-Tenant": "ünïcode \"quoted\" \\ \t\n", "Bad-Utf8": "\xff\xfe", "Auth": "[redacted]",
}}

func TestAttemptJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range []consign.AttemptRequest{attemptRequest, {Method: "POST", URL: "https://a.example"}, {Headers: map[string]string{}}} {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		var fromStd, fromAppend consign.AttemptRequest
		require.NoError(t, json.Unmarshal(want, &fromStd))
		require.NoError(t, json.Unmarshal(appendRequest(nil, &r), &fromAppend))
		require.Equal(t, fromStd, fromAppend)
	}
	var headers map[string]string
	require.NoError(t, json.Unmarshal(appendStringMap(nil, nil), &headers))
	require.Nil(t, headers)
	ids := []string{"dlv_1", "dlv_\"2\""}
	var got []string
	require.NoError(t, json.Unmarshal(appendStrings(nil, ids), &got))
	require.Equal(t, ids, got)
}

// FuzzKeysColumn: events.keys, quoted by hand, holds the keys encoding/json would.
func FuzzKeysColumn(f *testing.F) {
	f.Add("1001", `PO-"7"\`, "\x00\x1f\x7f\u2028<&>")
	f.Add("ünï😀", "\xff", "")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		keys := []string{a, b, c}
		var want, got []string
		std, err := json.Marshal(keys)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(std, &want))
		col, ok := keysColumn(keys).(string)
		require.True(t, ok)
		require.NoError(t, json.Unmarshal([]byte(col), &got), "%q", col)
		require.Equal(t, want, got)
	})
}
