package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/client"
	"github.com/consign-dev/consign/webhook"
)

func TestOrgsAndKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := start(t)
	c := s.c

	o, err := c.Orgs.Create(ctx, client.OrgInput{Name: "Acme Outdoor", Role: client.RoleSeller})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(o.ID, "org_"))
	require.Equal(t, client.RoleSeller, o.Role)

	got, err := c.Orgs.Get(ctx, o.ID)
	require.NoError(t, err)
	require.Equal(t, "Acme Outdoor", got.Name)

	up, err := c.Orgs.Update(ctx, o.ID, client.OrgInput{Name: "Acme Outdoor Co."})
	require.NoError(t, err)
	require.Equal(t, "Acme Outdoor Co.", up.Name)
	require.Equal(t, client.RoleSeller, up.Role, "an empty field keeps its value")

	page, err := c.Orgs.List(ctx, nil)
	require.NoError(t, err)
	require.Len(t, page.Data, 1)
	require.Empty(t, page.NextCursor)

	k, err := c.Keys.Create(ctx, o.ID, "ci")
	require.NoError(t, err)
	require.NotEmpty(t, k.Key, "the value is in the creation reply")
	keys, err := c.Keys.List(ctx, o.ID, &client.ListOptions{Limit: 10})
	require.NoError(t, err)
	require.Len(t, keys.Data, 1)
	require.Empty(t, keys.Data[0].Key, "and never again")
	var ids []string
	for key, err := range c.Keys.All(ctx, o.ID, nil) {
		require.NoError(t, err)
		ids = append(ids, key.ID)
	}
	require.Equal(t, []string{k.ID}, ids)

	// An org key reaches its own org only.
	orgClient := client.New(s.url, k.Key)
	_, err = orgClient.Orgs.Get(ctx, o.ID)
	require.NoError(t, err)
	_, err = orgClient.Orgs.List(ctx, nil)
	e := apiError(t, err)
	require.Equal(t, http.StatusForbidden, e.Status)
	require.Equal(t, client.CodeForbidden, e.Code())
	other := newOrg(t, c, "Other")
	_, err = orgClient.Endpoints.List(ctx, other.ID, nil)
	require.Equal(t, client.CodeNotFound, apiError(t, err).Code())

	require.NoError(t, c.Keys.Delete(ctx, o.ID, k.ID))
	_, err = orgClient.Orgs.Get(ctx, o.ID)
	require.Equal(t, http.StatusUnauthorized, apiError(t, err).Status)

	require.NoError(t, c.Orgs.Delete(ctx, o.ID))
	_, err = c.Orgs.Get(ctx, o.ID)
	require.Equal(t, http.StatusNotFound, apiError(t, err).Status)
}

func TestEventTypes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t).c

	types, err := c.EventTypes.List(ctx)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, et := range types {
		names[et.Name] = true
	}
	require.True(t, names["order.fulfilled"], "the built-in catalog")

	et, err := c.EventTypes.Create(ctx, client.EventTypeInput{
		Name: "return.approved", Description: "A return was approved.",
		Schema: json.RawMessage(`{"type":"object","required":["rma"]}`),
	})
	require.NoError(t, err)
	require.False(t, et.Builtin)

	_, err = c.EventTypes.Create(ctx, client.EventTypeInput{Name: "return.approved"})
	require.Equal(t, client.CodeConflict, apiError(t, err).Code())

	et, err = c.EventTypes.Update(ctx, "return.approved", client.EventTypePatch{Description: new("An RMA was approved.")})
	require.NoError(t, err)
	require.Equal(t, "An RMA was approved.", et.Description)
	require.JSONEq(t, `{"type":"object","required":["rma"]}`, string(et.Schema), "a nil field keeps its value")

	et, err = c.EventTypes.Get(ctx, "return.approved")
	require.NoError(t, err)
	require.Equal(t, "An RMA was approved.", et.Description)

	// The schema holds when publishing.
	o := newOrg(t, c, "Acme")
	_, err = c.Events.Publish(ctx, o.ID, client.EventInput{Type: "return.approved", Payload: map[string]any{}})
	require.Equal(t, http.StatusUnprocessableEntity, apiError(t, err).Status)
}

func TestEndpointsAndSecrets(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t).c
	rcv := newReceiver(t)
	o := newOrg(t, c, "Acme")

	ep, err := c.Endpoints.Create(ctx, o.ID, client.EndpointInput{
		URL: rcv.url(), Topics: []string{"order.*"}, Description: "warehouse",
		Headers: map[string]string{"X-Partner": "acme"}, RateLimit: 5, BurstLimit: 2,
		Ordering: "key", Retry: &client.RetryPolicy{Schedule: []client.Duration{client.Duration(time.Second)}, MaxAge: client.Duration(time.Hour)},
	})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(ep.Secret, "whsec_"), "the first secret is shown once")
	require.Equal(t, "POST", ep.Method)
	require.Equal(t, 5.0, ep.RateLimit)
	require.Equal(t, "key", ep.Ordering)
	require.True(t, ep.Active)

	got, err := c.Endpoints.Get(ctx, o.ID, ep.ID)
	require.NoError(t, err)
	require.Equal(t, rcv.url(), got.URL)
	require.Equal(t, "••••", got.Headers["X-Partner"], "header values are shown masked")

	up, err := c.Endpoints.Update(ctx, o.ID, ep.ID, client.EndpointPatch{Description: new("main warehouse"), Coalesce: new(true)})
	require.NoError(t, err)
	require.Equal(t, "main warehouse", up.Description)
	require.True(t, up.Coalesce)
	require.Equal(t, []string{"order.*"}, up.Topics, "absent fields keep their values")
	require.Equal(t, 5.0, up.RateLimit)

	up, err = c.Endpoints.Update(ctx, o.ID, ep.ID, client.EndpointPatch{Active: new(false)})
	require.NoError(t, err)
	require.False(t, up.Active)
	require.NotNil(t, up.DisabledAt)
	up, err = c.Endpoints.Update(ctx, o.ID, ep.ID, client.EndpointPatch{Active: new(true)})
	require.NoError(t, err)
	require.True(t, up.Active)

	// A test send, verified the way a partner would.
	res, err := c.Endpoints.Test(ctx, o.ID, ep.ID, client.TestInput{Type: "order.fulfilled", Payload: map[string]int{"order_id": 1}})
	require.NoError(t, err)
	require.Equal(t, client.StatusSucceeded, res.Status)
	require.NotNil(t, res.Attempt)
	require.NotNil(t, res.Attempt.Response)
	require.Equal(t, http.StatusOK, res.Attempt.Response.Status)
	require.Equal(t, `{"ok":true}`, res.Attempt.Response.Body)
	reqs := rcv.requests()
	require.Len(t, reqs, 1)
	require.NoError(t, webhook.Verify(ep.Secret, reqs[0].header, reqs[0].body))
	require.Equal(t, "acme", reqs[0].header.Get("X-Partner"))

	st, err := c.Endpoints.Stats(ctx, o.ID, ep.ID, time.Hour)
	require.NoError(t, err)
	require.Equal(t, ep.ID, st.EndpointID)
	require.Equal(t, client.Duration(time.Hour), st.Window)
	require.Equal(t, 1, st.Attempts)

	job, err := c.Endpoints.Recover(ctx, o.ID, ep.ID, client.RecoverInput{Since: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	require.Equal(t, client.JobCompleted, job.Status)
	require.Equal(t, client.JobRecover, job.Kind)
	require.Zero(t, job.Requeued, "nothing failed")
	recorded, err := c.Jobs.Get(ctx, o.ID, job.ID)
	require.NoError(t, err)
	require.Equal(t, ep.ID, recorded.EndpointID)

	// Secrets: add, list, expire, rotate, delete.
	sec, err := c.Secrets.Add(ctx, o.ID, ep.ID, client.SecretInput{})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(sec.Value, "whsec_"))
	secs, err := c.Secrets.List(ctx, o.ID, ep.ID)
	require.NoError(t, err)
	require.Len(t, secs, 2)
	for _, s := range secs {
		require.Empty(t, s.Value, "values are never listed")
	}
	later := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	sec2, err := c.Secrets.SetExpiry(ctx, o.ID, ep.ID, sec.ID, &later)
	require.NoError(t, err)
	require.NotNil(t, sec2.ExpiresAt)
	require.True(t, later.Equal(*sec2.ExpiresAt))
	sec2, err = c.Secrets.SetExpiry(ctx, o.ID, ep.ID, sec.ID, nil)
	require.NoError(t, err)
	require.Nil(t, sec2.ExpiresAt)

	rot, err := c.Secrets.Rotate(ctx, o.ID, ep.ID, client.RotateInput{Grace: new(time.Hour)})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(rot.Value, "whsec_"))
	secs, err = c.Secrets.List(ctx, o.ID, ep.ID)
	require.NoError(t, err)
	require.Len(t, secs, 3)
	for _, s := range secs {
		if s.ID != rot.ID {
			require.NotNil(t, s.ExpiresAt, "the others expire after the grace period")
		}
	}
	require.NoError(t, c.Secrets.Delete(ctx, o.ID, ep.ID, sec.ID))

	// Every secret still active signs: the old secret and the rotated one both verify.
	_, err = c.Endpoints.Test(ctx, o.ID, ep.ID, client.TestInput{})
	require.NoError(t, err)
	reqs = rcv.requests()
	last := reqs[len(reqs)-1]
	require.NoError(t, webhook.Verify(ep.Secret, last.header, last.body))
	require.NoError(t, webhook.Verify(rot.Value, last.header, last.body))

	// An ed25519 endpoint gives receivers its public key.
	priv := "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg=="
	ed, err := c.Endpoints.Create(ctx, o.ID, client.EndpointInput{URL: rcv.url() + "/ed", Topics: []string{"*"}, Secret: priv})
	require.NoError(t, err)
	require.Equal(t, "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=", ed.PublicKey)
	_, err = c.Endpoints.Test(ctx, o.ID, ed.ID, client.TestInput{})
	require.NoError(t, err)
	reqs = rcv.requests()
	last = reqs[len(reqs)-1]
	require.NoError(t, webhook.Verify(ed.PublicKey, last.header, last.body))

	var listed []string
	for e, err := range c.Endpoints.All(ctx, o.ID, &client.ListOptions{Limit: 1}) {
		require.NoError(t, err)
		listed = append(listed, e.ID)
	}
	require.Equal(t, []string{ed.ID, ep.ID}, listed, "newest first")

	require.NoError(t, c.Endpoints.Delete(ctx, o.ID, ed.ID))
	_, err = c.Endpoints.Get(ctx, o.ID, ed.ID)
	require.Equal(t, client.CodeNotFound, apiError(t, err).Code())
}

func TestEventsAndDeliveries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t).c
	rcv := newReceiver(t)
	o := newOrg(t, c, "Acme")
	ep, err := c.Endpoints.Create(ctx, o.ID, client.EndpointInput{URL: rcv.url(), Topics: []string{"order.*"},
		Retry: &client.RetryPolicy{Schedule: []client.Duration{client.Duration(time.Hour)}}})
	require.NoError(t, err)

	ev, err := c.Events.Publish(ctx, o.ID, client.EventInput{Type: "order.fulfilled", Payload: map[string]any{"order_id": 1001},
		OrderingKey: "order-1001"}, client.IdempotencyKey("order-1001-fulfilled"))
	require.NoError(t, err)
	require.False(t, ev.Duplicate)
	require.Equal(t, "order-1001-fulfilled", ev.IdempotencyKey)
	require.Equal(t, "order-1001", ev.OrderingKey)
	require.JSONEq(t, `{"order_id": 1001}`, string(ev.Payload))

	again, err := c.Events.Publish(ctx, o.ID, client.EventInput{Type: "order.fulfilled", Payload: map[string]any{"order_id": 1001}},
		client.IdempotencyKey("order-1001-fulfilled"))
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, ev.ID, again.ID)

	batch, err := c.Events.PublishBatch(ctx, o.ID, []client.EventInput{
		{Type: "order.created", Payload: json.RawMessage(`{"order_id":1002}`)},
		{Type: "order.cancelled", Payload: json.RawMessage(`{"order_id":1003}`), IdempotencyKey: "c-1003"},
	})
	require.NoError(t, err)
	require.Len(t, batch, 2)
	require.Equal(t, "order.created", batch[0].Type)
	require.Equal(t, "c-1003", batch[1].IdempotencyKey)

	// Every event reaches the receiver.
	require.Eventually(t, func() bool { return len(rcv.requests()) == 3 }, waitFor, tick)
	require.Eventually(t, func() bool {
		p, err := c.Deliveries.List(ctx, o.ID, &client.DeliveryListOptions{Status: client.StatusSucceeded})
		return err == nil && len(p.Data) == 3
	}, waitFor, tick)

	got, err := c.Events.Get(ctx, o.ID, ev.ID)
	require.NoError(t, err)
	require.Len(t, got.Deliveries, 1)
	require.Equal(t, ep.ID, got.Deliveries[0].EndpointID)
	require.Equal(t, client.StatusSucceeded, got.Deliveries[0].Status)

	evs, err := c.Events.List(ctx, o.ID, &client.EventListOptions{Type: "order.created"})
	require.NoError(t, err)
	require.Len(t, evs.Data, 1)
	require.Equal(t, batch[0].ID, evs.Data[0].ID)
	n := 0
	for _, err := range c.Events.All(ctx, o.ID, &client.EventListOptions{Limit: 2}) {
		require.NoError(t, err)
		n++
	}
	require.Equal(t, 3, n)

	var all []string
	for d, err := range c.Deliveries.All(ctx, o.ID, &client.DeliveryListOptions{Limit: 2, EndpointID: ep.ID}) {
		require.NoError(t, err)
		all = append(all, d.ID)
	}
	require.Len(t, all, 3)
	ds, err := c.Deliveries.List(ctx, o.ID, &client.DeliveryListOptions{EventID: ev.ID, EndpointID: ep.ID})
	require.NoError(t, err)
	require.Len(t, ds.Data, 1)
	d, err := c.Deliveries.Get(ctx, o.ID, ds.Data[0].ID)
	require.NoError(t, err)
	require.Len(t, d.Attempts, 1)
	require.Equal(t, http.StatusOK, d.Attempts[0].Response.Status)
	require.Equal(t, rcv.url(), d.Attempts[0].Request.URL)

	// Retry sends it again now, even though it succeeded.
	rd, err := c.Deliveries.Retry(ctx, o.ID, d.ID)
	require.NoError(t, err)
	require.Equal(t, d.ID, rd.ID)
	require.Eventually(t, func() bool { return len(rcv.requests()) == 4 }, waitFor, tick)
	require.Eventually(t, func() bool {
		d, err := c.Deliveries.Get(ctx, o.ID, d.ID)
		return err == nil && len(d.Attempts) == 2 && d.Status == client.StatusSucceeded
	}, waitFor, tick)

	// Failed deliveries are recovered on request.
	rcv.status.Store(http.StatusInternalServerError)
	fail, err := c.Events.Publish(ctx, o.ID, client.EventInput{Type: "order.updated", Payload: map[string]int{"order_id": 1004}})
	require.NoError(t, err)
	var failed client.Delivery
	require.Eventually(t, func() bool {
		p, err := c.Deliveries.List(ctx, o.ID, &client.DeliveryListOptions{EventID: fail.ID})
		if err != nil || len(p.Data) != 1 || p.Data[0].AttemptsCount == 0 {
			return false
		}
		failed = p.Data[0]
		return true
	}, waitFor, tick)
	require.Equal(t, client.StatusPending, failed.Status, "waiting an hour for its retry")
	rcv.status.Store(http.StatusOK)
	_, err = c.Deliveries.Retry(ctx, o.ID, failed.ID)
	require.Equal(t, client.CodeConflict, apiError(t, err).Code(), "a pending delivery is sent without a retry")
	job, err := c.Endpoints.Recover(ctx, o.ID, ep.ID, client.RecoverInput{Since: time.Now().Add(-time.Hour), Status: []string{client.StatusPending}})
	require.NoError(t, err)
	require.Equal(t, 1, job.Requeued)
	require.Eventually(t, func() bool {
		d, err := c.Deliveries.Get(ctx, o.ID, failed.ID)
		return err == nil && d.Status == client.StatusSucceeded
	}, waitFor, tick)
}

func TestReplayAndJobs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t).c
	o := newOrg(t, c, "Acme")
	since := time.Now().Add(-time.Second)
	ev, err := c.Events.Publish(ctx, o.ID, client.EventInput{Type: "order.created", Payload: map[string]any{"order_id": 1}})
	require.NoError(t, err)
	rcv := newReceiver(t)
	ep, err := c.Endpoints.Create(ctx, o.ID, client.EndpointInput{URL: rcv.url(), Topics: []string{"order.*"}})
	require.NoError(t, err)

	job, err := c.Endpoints.Replay(ctx, o.ID, ep.ID, client.ReplayInput{Since: since, Types: []string{"order.created"}})
	require.NoError(t, err)
	require.Equal(t, client.JobReplay, job.Kind)
	require.Equal(t, []string{"order.created"}, job.Params.Types)
	require.Eventually(t, func() bool {
		j, err := c.Jobs.Get(ctx, o.ID, job.ID)
		return err == nil && j.Status == client.JobCompleted && j.Progress.Created == 1
	}, waitFor, tick)
	require.Eventually(t, func() bool { return len(rcv.requests()) == 1 }, waitFor, tick)
	require.Equal(t, ev.ID, rcv.requests()[0].header.Get("webhook-id"))

	page, err := c.Jobs.List(ctx, o.ID, &client.JobListOptions{EndpointID: ep.ID})
	require.NoError(t, err)
	require.Len(t, page.Data, 1)
	_, err = c.Jobs.Cancel(ctx, o.ID, job.ID)
	require.Equal(t, client.CodeConflict, apiError(t, err).Code(), "a completed job cannot be cancelled")
	_, err = c.Endpoints.Replay(ctx, o.ID, ep.ID, client.ReplayInput{})
	e := apiError(t, err)
	require.Equal(t, client.CodeInvalid, e.Code())
	require.Equal(t, "since", e.Errors[0].Field)
}

func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := start(t)
	c := s.c
	o := newOrg(t, c, "Acme")

	// Validation: every invalid field is named.
	_, err := c.Endpoints.Create(ctx, o.ID, client.EndpointInput{URL: "ftp://example.com", Topics: []string{"no such topic"}, Method: "GET"})
	e := apiError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, e.Status)
	require.Equal(t, client.CodeInvalid, e.Code())
	require.Equal(t, "Unprocessable Entity", e.Title)
	fields := map[string]bool{}
	for _, f := range e.Errors {
		fields[f.Field] = true
		require.NotEmpty(t, f.Message)
	}
	require.True(t, fields["topics"] && fields["method"], "%v", e.Errors)
	require.Contains(t, e.Error(), "method: ")
	require.Contains(t, e.Error(), "(422 Unprocessable Entity)")

	_, err = c.Endpoints.Create(ctx, o.ID, client.EndpointInput{URL: "ftp://example.com", Topics: []string{"*"}})
	require.Equal(t, "url", apiError(t, err).Errors[0].Field)

	_, err = c.Orgs.Create(ctx, client.OrgInput{})
	e = apiError(t, err)
	require.Equal(t, []client.FieldError{{Field: "name", Message: "is required"}}, e.Errors)
	require.Equal(t, "consign: name: is required (422 Unprocessable Entity)", e.Error())

	_, err = c.Deliveries.List(ctx, o.ID, &client.DeliveryListOptions{Status: "lost"})
	require.Equal(t, "status", apiError(t, err).Errors[0].Field)
	_, err = c.Orgs.List(ctx, &client.ListOptions{Limit: 501})
	require.Equal(t, "limit", apiError(t, err).Errors[0].Field)

	_, err = c.Endpoints.Get(ctx, o.ID, "ep_nope")
	require.Equal(t, http.StatusNotFound, apiError(t, err).Status)
	_, err = c.Events.Get(ctx, o.ID, "../../orgs")
	require.Equal(t, http.StatusNotFound, apiError(t, err).Status, "ids are escaped into the path")

	_, err = client.New(s.url, "wrong").Orgs.List(ctx, nil)
	require.Equal(t, client.CodeUnauthorized, apiError(t, err).Code())
	_, err = client.New(s.url, "").Orgs.List(ctx, nil)
	require.Contains(t, apiError(t, err).Detail, "missing API key")

	// Not every failure is the API's: a proxy's page, a refused connection.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = fmt.Fprint(w, "<html>"+strings.Repeat("bad gateway ", 100)+"</html>")
	}))
	t.Cleanup(proxy.Close)
	_, err = client.New(proxy.URL, adminKey).Orgs.Get(ctx, "org_x")
	e = apiError(t, err)
	require.Equal(t, http.StatusBadGateway, e.Status)
	require.Empty(t, e.Code())
	require.True(t, strings.HasPrefix(e.Detail, "<html>bad gateway"))
	require.LessOrEqual(t, len(e.Detail), 204)

	proxy.Close()
	_, err = client.New(proxy.URL, adminKey).Orgs.Get(ctx, "org_x")
	require.Error(t, err)
	var apiErr *client.Error
	require.False(t, errors.As(err, &apiErr), "a connection error is not an API error")

	// Timeouts and cancellation.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	_, err = client.New(slow.URL, adminKey, client.WithTimeout(50*time.Millisecond)).Orgs.List(ctx, nil)
	require.ErrorContains(t, err, "Client.Timeout")
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = client.New(slow.URL, adminKey).Orgs.List(cctx, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// Bad input never leaves the client.
	_, err = c.Events.Publish(ctx, o.ID, client.EventInput{Type: "order.created", Payload: json.RawMessage(`{not json`)})
	require.ErrorContains(t, err, "encode POST")
}

func TestPagination(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t).c
	var want []string
	for i := range 7 {
		want = append(want, newOrg(t, c, "org "+strconv.Itoa(i)).ID)
	}
	slices.Reverse(want) // lists are newest first

	p, err := c.Orgs.List(ctx, &client.ListOptions{Limit: 3})
	require.NoError(t, err)
	require.Len(t, p.Data, 3)
	require.NotEmpty(t, p.NextCursor)
	p2, err := c.Orgs.List(ctx, &client.ListOptions{Limit: 3, Cursor: p.NextCursor})
	require.NoError(t, err)
	require.Equal(t, want[3], p2.Data[0].ID)

	opts := &client.ListOptions{Limit: 2}
	var got []string
	for o, err := range c.Orgs.All(ctx, opts) {
		require.NoError(t, err)
		got = append(got, o.ID)
	}
	require.Equal(t, want, got)
	require.Empty(t, opts.Cursor, "All leaves the caller's options alone")

	// From a cursor on, and stopping early.
	got = nil
	for o, err := range c.Orgs.All(ctx, &client.ListOptions{Limit: 2, Cursor: want[4]}) {
		require.NoError(t, err)
		got = append(got, o.ID)
	}
	require.Equal(t, want[5:], got)
	n := 0
	for range c.Orgs.All(ctx, &client.ListOptions{Limit: 2}) {
		n++
		if n == 3 {
			break
		}
	}
	require.Equal(t, 3, n)

	// An error ends the iteration after being yielded once.
	errs := 0
	for o, err := range c.Orgs.All(ctx, &client.ListOptions{Limit: 600}) {
		require.Zero(t, o)
		require.Error(t, err)
		errs++
	}
	require.Equal(t, 1, errs)
}

func TestHTTPClientAndUserAgent(t *testing.T) {
	t.Parallel()
	var gotUA, gotAuth, gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUA, gotAuth, gotPath = r.UserAgent(), r.Header.Get("Authorization"), r.URL.EscapedPath()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, `{"id":"org_1","name":"x","role":"both","new_field":1}`)
	}))
	t.Cleanup(srv.Close)
	c := client.New(srv.URL+"/consign/", "k", client.WithHTTPClient(srv.Client()), client.WithUserAgent("acme-sync/2"))
	o, err := c.Orgs.Get(t.Context(), "org 1")
	require.NoError(t, err, "unknown fields in replies are ignored")
	require.Equal(t, "org_1", o.ID)
	require.Equal(t, "acme-sync/2", gotUA)
	require.Equal(t, "Bearer k", gotAuth)
	require.Equal(t, "/consign/v1/orgs/org%201", gotPath)
}

func TestSources(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t).c
	o := newOrg(t, c, "Acme")

	src, err := c.Sources.Create(ctx, o.ID, client.SourceInput{
		Name: "Deposco shipments", Topic: "shipment.created",
		Verify: &client.SourceVerify{Type: "header-token", Header: "X-Token"},
		Dedupe: &client.SourceDedupe{JSONPointer: "/shipment_id"},
	})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(src.ID, "src_"))
	require.NotEmpty(t, src.Verify.Secret, "a generated secret is shown once")
	require.Contains(t, src.IngestURL, "/in/")

	post := func(url, token, body string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("X-Token", token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, post(src.IngestURL, src.Verify.Secret, `{"shipment_id":"shp_1"}`))
	require.Equal(t, http.StatusOK, post(src.IngestURL, src.Verify.Secret, `{"shipment_id":"shp_1"}`))
	require.Equal(t, http.StatusUnauthorized, post(src.IngestURL, "wrong-token", `{"shipment_id":"shp_2"}`))

	page, err := c.Sources.Receipts(ctx, o.ID, src.ID, nil)
	require.NoError(t, err)
	require.Len(t, page.Data, 3)
	unverified, err := c.Sources.Receipts(ctx, o.ID, src.ID, &client.ReceiptListOptions{Verified: new(false)})
	require.NoError(t, err)
	require.Len(t, unverified.Data, 1)
	n := 0
	for rc, err := range c.Sources.AllReceipts(ctx, o.ID, src.ID, &client.ReceiptListOptions{Duplicate: new(true), Limit: 1}) {
		require.NoError(t, err)
		require.True(t, rc.Duplicate)
		n++
	}
	require.Equal(t, 1, n)
	rc, err := c.Sources.Receipt(ctx, o.ID, src.ID, unverified.Data[0].ID)
	require.NoError(t, err)
	require.False(t, rc.Verified)
	require.JSONEq(t, `{"shipment_id":"shp_2"}`, rc.Body)

	got, err := c.Sources.Get(ctx, o.ID, src.ID)
	require.NoError(t, err)
	require.Equal(t, src.IngestURL, got.IngestURL)
	up, err := c.Sources.Update(ctx, o.ID, src.ID, client.SourcePatch{Name: new("Deposco"),
		Poll: &client.SourcePoll{URL: "http://127.0.0.1:1/shipments", IDPointer: "/id", Interval: client.Duration(time.Hour)}})
	require.NoError(t, err)
	require.Equal(t, "Deposco", up.Name)
	require.NotNil(t, up.Poll)
	up, err = c.Sources.Update(ctx, o.ID, src.ID, client.SourcePatch{RemovePoll: true})
	require.NoError(t, err)
	require.Nil(t, up.Poll)
	require.Equal(t, "Deposco", up.Name)

	rot, err := c.Sources.RotateToken(ctx, o.ID, src.ID)
	require.NoError(t, err)
	require.NotEqual(t, src.IngestURL, rot.IngestURL)
	require.Equal(t, http.StatusNotFound, post(src.IngestURL, src.Verify.Secret, `{"shipment_id":"shp_3"}`))

	var ids []string
	for s, err := range c.Sources.All(ctx, o.ID, nil) {
		require.NoError(t, err)
		ids = append(ids, s.ID)
	}
	require.Equal(t, []string{src.ID}, ids)
	require.NoError(t, c.Sources.Delete(ctx, o.ID, src.ID))
	_, err = c.Sources.Get(ctx, o.ID, src.ID)
	require.Equal(t, client.CodeNotFound, apiError(t, err).Code())
}

func TestTransformation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t).c
	rcv := newReceiver(t)
	o := newOrg(t, c, "Acme")
	ep, err := c.Endpoints.Create(ctx, o.ID, client.EndpointInput{URL: rcv.url(), Topics: []string{"order.*"},
		Transformation: `function handler(w) { w.payload = {id: w.payload.order_id}; return w }`})
	require.NoError(t, err)
	res, err := c.Endpoints.TestTransformation(ctx, o.ID, ep.ID, client.TransformationTest{Type: "order.created",
		Payload: map[string]any{"order_id": "o_1"}})
	require.NoError(t, err)
	require.True(t, res.OK, "%+v", res)
	require.JSONEq(t, `{"id":"o_1"}`, string(res.Webhook.Payload))

	_, err = c.Endpoints.TestTransformation(ctx, o.ID, ep.ID, client.TransformationTest{Code: "function handler( {"})
	require.Equal(t, http.StatusUnprocessableEntity, apiError(t, err).Status)

	none := ""
	got, err := c.Endpoints.Update(ctx, o.ID, ep.ID, client.EndpointPatch{Transformation: &none})
	require.NoError(t, err)
	require.Empty(t, got.Transformation, "an empty transformation removes it")
}

// TestSearchByKey: a type's keys are set through the client, and both lists find the
// events and deliveries of an order by its id.
func TestSearchByKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t).c
	et, err := c.EventTypes.Create(ctx, client.EventTypeInput{Name: "rma.opened", Keys: []string{"/rma", "/order_id"}})
	require.NoError(t, err)
	require.Equal(t, []string{"/rma", "/order_id"}, et.Keys)
	o := newOrg(t, c, "Acme")
	_, err = c.Endpoints.Create(ctx, o.ID, client.EndpointInput{URL: "https://partner.example/hook", Topics: []string{"rma.*"}})
	require.NoError(t, err)
	ev, err := c.Events.Publish(ctx, o.ID, client.EventInput{Type: "rma.opened", Payload: map[string]any{"rma": "RMA-1", "order_id": 1001}})
	require.NoError(t, err)
	_, err = c.Events.Publish(ctx, o.ID, client.EventInput{Type: "rma.opened", Payload: map[string]any{"rma": "RMA-2", "order_id": 1002}})
	require.NoError(t, err)

	evs, err := c.Events.List(ctx, o.ID, &client.EventListOptions{Key: "1001"})
	require.NoError(t, err)
	require.Len(t, evs.Data, 1)
	require.Equal(t, ev.ID, evs.Data[0].ID)
	ds, err := c.Deliveries.List(ctx, o.ID, &client.DeliveryListOptions{Key: "RMA-1"})
	require.NoError(t, err)
	require.Len(t, ds.Data, 1)
	require.Equal(t, ev.ID, ds.Data[0].EventID)

	et, err = c.EventTypes.Update(ctx, "rma.opened", client.EventTypePatch{Keys: []string{}})
	require.NoError(t, err)
	require.Empty(t, et.Keys, "an empty list removes the keys")
	_, err = c.Events.List(ctx, o.ID, &client.EventListOptions{Key: strings.Repeat("x", 200)})
	require.Equal(t, client.CodeInvalid, apiError(t, err).Code())
}
