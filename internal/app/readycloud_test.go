package app_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadyCloudSharedRemoteURL: webhooks of different entities may share a remote_url
// (each has its own token); a second webhook of the same entity on it is ReadyCloud's
// 400 naming remote_url. Ordinary endpoints keep one configuration per URL.
func TestReadyCloudSharedRemoteURL(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("readycloud-shared")
	base := "/api/v2/orgs/" + o.id + "/webhooks/?bearer_token=" + url.QueryEscape(o.key)
	rc := newReceiver(t, nil)
	remote := rc.URL + "/catch-rc-webhook/"
	tokens := map[string]bool{}
	for _, entity := range []string{"orders", "contact", "contact-address"} {
		w := e.c.must(http.StatusCreated, "POST", base, map[string]any{"entity": entity, "remote_url": remote}, "")
		require.Equal(t, remote, w["remote_url"])
		tokens[w["token"].(string)] = true
	}
	require.Len(t, tokens, 3, "each webhook has its own token")
	var page struct {
		Count int `json:"count"`
	}
	e.c.get(base, "", &page)
	require.Equal(t, 3, page.Count)

	r := e.c.raw("POST", base, map[string]any{"entity": "contact", "remote_url": remote}, "", nil)
	require.Contains(t, rcFieldErrors(t, r)["remote_url"].([]any)[0], "a webhook of this entity for this remote_url exists already")

	// An ordinary (signed) endpoint: one per URL, whatever its topics.
	e.createEndpoint(o, map[string]any{"url": rc.URL + "/signed", "topics": []string{"order.*"}})
	r = e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", map[string]any{"url": rc.URL + "/signed", "topics": []string{"contact.*"}}, o.key, nil)
	require.Equal(t, http.StatusConflict, r.status, "%s", r.body)

	// Each webhook gets its own entity's events, with its own token.
	e.publish(o, "contact.updated", map[string]any{"id": 1})
	got := rc.next(t)
	require.Equal(t, "PUT", got.Method)
	require.True(t, tokens[got.Header.Get("Auth")])
}
