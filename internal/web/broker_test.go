package web_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	neturl "net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/brokertest"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
)

// TestBrokerEndpointPages: a broker endpoint's pages show its URL with the password
// masked (list, endpoint, edit form, delivery), and a delivery's attempt log shows what
// the broker acknowledged; saving the edit form as shown keeps the password.
func TestBrokerEndpointPages(t *testing.T) {
	t.Parallel()
	_, queue := brokertest.AMQPTopicQueue(t, "web-")

	a, err := app.Start(context.Background(), app.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), InsecureTargets: true, AdminKey: adminKey,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	ctx := context.Background()
	org := &consign.Org{Name: "Acme"}
	require.NoError(t, a.Manage.CreateOrg(ctx, org))
	url := "amqp://guest:guest@" + brokertest.AMQPAddr + "/?exchange=amq.topic&routing_key=" + queue
	shown := "amqp://guest:••••@" + brokertest.AMQPAddr + "/?exchange=amq.topic&amp;routing_key=" + queue
	ep, err := a.Manage.CreateEndpoint(ctx, org.ID, &manage.EndpointInput{URL: url, Topics: []string{"order.*"}})
	require.NoError(t, err)

	req, err := http.NewRequest(http.MethodPost, a.URL()+"/v1/orgs/"+org.ID+"/events", strings.NewReader(`{"type":"order.created","payload":{"n":1}}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	var dlv string
	require.Eventually(t, func() bool {
		ds, err := a.Store.DeliveryList(ctx, org.ID, store.DeliveryFilter{Page: store.Page{Limit: 10}})
		if err != nil || len(ds) != 1 || ds[0].Status != consign.StatusSucceeded {
			return false
		}
		dlv = ds[0].ID
		return true
	}, 10*time.Second, 10*time.Millisecond)

	b := newBrowser(t, a.URL())
	token := b.signIn(adminKey)
	o := "/ui/orgs/" + org.ID + "/"
	for _, path := range []string{o + "endpoints", o + "endpoints/" + ep.Endpoint.ID, o + "endpoints/" + ep.Endpoint.ID + "/edit", o + "deliveries/" + dlv} {
		page := b.get(path)
		require.Equal(t, http.StatusOK, page.status, path)
		require.Contains(t, page.body, shown, path)
		require.NotContains(t, page.body, "guest:guest", path)
	}
	page := b.get(o + "deliveries/" + dlv)
	require.Contains(t, page.body, "acknowledged by the broker")
	require.Contains(t, page.body, "<h4>Broker acknowledgement</h4>")
	require.Contains(t, page.body, `<th scope="row">confirm</th><td><code>ack</code></td>`)
	require.Contains(t, page.body, `<th scope="row">delivery_tag</th><td><code>1</code></td>`)

	// The edit form sent back with the URL as shown keeps the stored password.
	edit := b.get(o + "endpoints/" + ep.Endpoint.ID + "/edit")
	inForm := regexp.MustCompile(`name="url" type="url" value="([^"]*)"`).FindStringSubmatch(edit.body)
	require.NotNil(t, inForm, edit.body)
	res := b.post(o+"endpoints/"+ep.Endpoint.ID+"/edit", neturl.Values{"csrf": {token}, "url": {html.UnescapeString(inForm[1])},
		"topics": {"order.*"}, "description": {"edited"}, "method": {"POST"}, "payload_format": {"envelope"}, "auth_type": {"signature"}})
	require.Less(t, res.status, 400, res.body)
	stored, err := a.Manage.Endpoint(ctx, org.ID, ep.Endpoint.ID)
	require.NoError(t, err)
	require.Equal(t, "edited", stored.Description)
	require.Equal(t, url, stored.URL, "the mask sent back kept the password")
}
