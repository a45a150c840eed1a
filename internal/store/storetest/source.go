package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// newSourceRow returns a source as the inbound layer would store it (credentials
// sealed), not yet stored. Its token hash is unique.
func newSourceRow(tb testing.TB, orgID string, at time.Time) *store.SourceRow {
	tb.Helper()
	id := consign.NewID(consign.PrefixSource, at)
	r := &store.SourceRow{
		Source: consign.Source{
			ID: id, OrgID: orgID, Name: "Deposco shipments", Topic: "shipment.created",
			Verify:    consign.SourceVerify{Type: consign.VerifyHMACSHA256, Header: "X-Signature", Encoding: "hex", Prefix: "sha256="},
			Dedupe:    consign.SourceDedupe{JSONPointer: "/id"},
			CreatedAt: at, UpdatedAt: at,
		},
		TokenHash: []byte("hash:" + id), TokenSealed: []byte("sealed token " + id), Sealed: []byte("sealed credentials " + id),
	}
	return r
}

func withPoll(next time.Time) func(*store.SourceRow) {
	return func(r *store.SourceRow) {
		r.Poll = &consign.SourcePoll{URL: "https://provider.example.com/shipments", ItemsPointer: "/data", IDPointer: "/id",
			Cron: "0 0 * * *", Timezone: "America/New_York", Timeout: consign.Duration(30 * time.Second)}
		r.NextPollAt = next
	}
}

func insertSource(tb testing.TB, s store.Store, orgID string, at time.Time, mods ...func(*store.SourceRow)) *store.SourceRow {
	tb.Helper()
	r := newSourceRow(tb, orgID, at)
	for _, m := range mods {
		m(r)
	}
	require.NoError(tb, s.SourceInsert(tb.Context(), r))
	require.EqualValues(tb, 1, r.Version)
	if r.Poll != nil {
		r.PollStatus = &consign.PollStatus{NextRunAt: ptr(r.NextPollAt)}
	}
	return r
}

func getSource(tb testing.TB, s store.Store, orgID, id string) *store.SourceRow {
	tb.Helper()
	r, err := s.SourceGet(tb.Context(), orgID, id)
	require.NoError(tb, err)
	return r
}

// newReceipt returns a pending webhook receipt of a source.
func newReceipt(src *store.SourceRow, key string, at time.Time) *consign.Receipt {
	return &consign.Receipt{
		ID: consign.NewID(consign.PrefixReceipt, at), OrgID: src.OrgID, SourceID: src.ID, Via: consign.ViaWebhook,
		Status: consign.ReceiptPending, Topic: src.Topic, Verified: true, DedupeKey: key,
		Headers: map[string]string{"Content-Type": "application/json", "X-Signature": "sha256=ab"},
		Body:    `{"id":"` + key + `","carrier":"UPS"}`, ReceivedAt: at,
	}
}

func insertReceipts(tb testing.TB, s store.Store, drop bool, rs ...*consign.Receipt) {
	tb.Helper()
	require.NoError(tb, s.ReceiptsInsert(tb.Context(), rs, drop))
}

func receiptIDs(rs []*consign.Receipt) []string {
	ids := []string{}
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

func testSource(t *testing.T, open opener) {
	t.Run("InsertGet", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		src := insertSource(t, s, org.ID, now, withPoll(now.Add(time.Hour)))
		plain := insertSource(t, s, org.ID, now)

		require.Equal(t, src, getSource(t, s, org.ID, src.ID))
		require.Equal(t, plain, getSource(t, s, org.ID, plain.ID))
		require.Nil(t, getSource(t, s, org.ID, plain.ID).PollStatus, "no poll, no poll status")

		got, err := s.SourceByTokenHash(ctx, src.TokenHash)
		require.NoError(t, err)
		require.Equal(t, src, got)
		_, err = s.SourceByTokenHash(ctx, []byte("no such hash"))
		requireCode(t, consign.ENOTFOUND, err)
		_, err = s.SourceGet(ctx, other.ID, src.ID)
		requireCode(t, consign.ENOTFOUND, err) // "another org's source is not found"
	})

	t.Run("CredentialsStayOutOfConfig", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		r := newSourceRow(t, org.ID, now)
		withPoll(now)(r)
		r.Verify.Secret, r.Verify.Password, r.Poll.Headers = "leaked secret", "leaked password", map[string]string{"Authorization": "Bearer x"}
		require.NoError(t, s.SourceInsert(t.Context(), r))
		got := getSource(t, s, org.ID, r.ID)
		require.Empty(t, got.Verify.Secret)
		require.Empty(t, got.Verify.Password)
		require.Empty(t, got.Poll.Headers)
		require.Equal(t, r.Sealed, got.Sealed)
	})

	t.Run("SourcesFrom", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		nats := insertSource(t, s, org.ID, now, func(r *store.SourceRow) {
			r.From = &consign.SourceFrom{Type: consign.FromNATS, URL: "nats://orders:hunter2@nats.example.com:4222", Subject: "orders.>", Durable: "consign",
				TLS: &consign.FromTLS{TLSInput: consign.TLSInput{ClientCertificate: "CERT", ClientKey: "KEY", CACertificates: "CA"}, Subject: "CN=x"}}
			r.TypeHeader = "X-Event-Type"
		})
		kafka := insertSource(t, s, org.ID, now, func(r *store.SourceRow) {
			r.From = &consign.SourceFrom{Type: consign.FromKafka, Brokers: []string{"k1.example.com:9092"}, Topic: "orders", Group: "consign"}
			r.TypePointer = "/type"
		})
		plain := insertSource(t, s, org.ID, now)

		got := getSource(t, s, org.ID, nats.ID)
		require.Equal(t, "nats://nats.example.com:4222", got.From.URL, "the URL's credentials are never stored in clear")
		require.Equal(t, &consign.FromTLS{TLSInput: consign.TLSInput{ClientCertificate: "CERT", CACertificates: "CA"}}, got.From.TLS,
			"the client key is never stored in clear")
		require.Equal(t, "X-Event-Type", got.TypeHeader)
		require.Equal(t, kafka.From, getSource(t, s, org.ID, kafka.ID).From)
		require.Equal(t, "/type", getSource(t, s, org.ID, kafka.ID).TypePointer)

		rows, err := s.SourcesFrom(t.Context())
		require.NoError(t, err)
		ids := map[string]bool{}
		for _, r := range rows {
			ids[r.ID] = true
			require.NotNil(t, r.From, "source %s has no broker", r.ID)
		}
		require.True(t, ids[nats.ID] && ids[kafka.ID], "both broker sources are listed")
		require.False(t, ids[plain.ID], "a source without a broker is not listed")
	})

	t.Run("TokenHashIsUnique", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		a := insertSource(t, s, org.ID, now)
		b := newSourceRow(t, org.ID, now)
		b.TokenHash = a.TokenHash
		requireCode(t, consign.ECONFLICT, s.SourceInsert(t.Context(), b))
	})

	t.Run("ListUpdateDelete", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		var ids []string
		for i := range 3 {
			ids = append(ids, insertSource(t, s, org.ID, now.Add(time.Duration(i)*time.Millisecond)).ID)
		}
		insertSource(t, s, other.ID, now)
		slices.Reverse(ids)
		page1, err := s.SourceList(ctx, org.ID, store.Page{Limit: 2})
		require.NoError(t, err)
		require.Len(t, page1, 2)
		page2, err := s.SourceList(ctx, org.ID, store.Page{Limit: 2, Cursor: page1[1].ID})
		require.NoError(t, err)
		require.Equal(t, ids, []string{page1[0].ID, page1[1].ID, page2[0].ID}, "newest first, keyset pages")
		require.Len(t, page2, 1)

		src := getSource(t, s, org.ID, ids[0])
		oldHash := src.TokenHash
		src.Name, src.Topic, src.TokenHash, src.TokenSealed = "renamed", "order.created", []byte("new hash"), []byte("new sealed")
		src.Dedupe = consign.SourceDedupe{Header: "X-Event-Id"}
		withPoll(now.Add(time.Minute))(src)
		src.UpdatedAt = now.Add(time.Second)
		require.NoError(t, s.SourceUpdate(ctx, src))
		require.EqualValues(t, 2, src.Version)
		src.PollStatus = &consign.PollStatus{NextRunAt: ptr(now.Add(time.Minute))}
		require.Equal(t, src, getSource(t, s, org.ID, src.ID))
		_, err = s.SourceByTokenHash(ctx, oldHash)
		requireCode(t, consign.ENOTFOUND, err) // "the old token no longer finds the source"

		wrongOrg := *src
		wrongOrg.OrgID = other.ID
		requireCode(t, consign.ENOTFOUND, s.SourceUpdate(ctx, &wrongOrg))
		requireCode(t, consign.ENOTFOUND, s.SourceDelete(ctx, other.ID, src.ID))

		insertReceipts(t, s, false, newReceipt(src, "k1", now))
		require.NoError(t, s.SourceDelete(ctx, org.ID, src.ID))
		_, err = s.SourceGet(ctx, org.ID, src.ID)
		requireCode(t, consign.ENOTFOUND, err)
		pending, err := s.ReceiptsPending(ctx, "", 100)
		require.NoError(t, err)
		require.Empty(t, pending, "receipts go with their source")
		requireCode(t, consign.ENOTFOUND, s.SourceDelete(ctx, org.ID, src.ID))
	})

	t.Run("OrgDeleteRemovesSources", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		src := insertSource(t, s, org.ID, now)
		insertReceipts(t, s, false, newReceipt(src, "k1", now))
		require.NoError(t, s.OrgDelete(t.Context(), org.ID))
		_, err := s.SourceByTokenHash(t.Context(), src.TokenHash)
		requireCode(t, consign.ENOTFOUND, err)
	})

	testReceipt(t, open)
	testPoll(t, open)
}

func testReceipt(t *testing.T, open opener) {
	t.Run("ReceiptInsertGet", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		src := insertSource(t, s, org.ID, now)
		r := newReceipt(src, "shp_1", now)
		r.Body = "not JSON \x00\xff kept as sent"
		r.Status, r.Reason, r.Verified = consign.ReceiptRejected, "verification failed: X-Signature does not match", false
		insertReceipts(t, s, false, r)
		got, err := s.ReceiptGet(ctx, org.ID, src.ID, r.ID)
		require.NoError(t, err)
		require.Equal(t, r, got)

		_, err = s.ReceiptGet(ctx, other.ID, src.ID, r.ID)
		requireCode(t, consign.ENOTFOUND, err)
		_, err = s.ReceiptGet(ctx, org.ID, insertSource(t, s, org.ID, now).ID, r.ID)
		requireCode(t, consign.ENOTFOUND, err) // "a receipt belongs to its source"
	})

	t.Run("Dedupe", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		src, otherSrc := insertSource(t, s, org.ID, now), insertSource(t, s, org.ID, now)

		rejected := newReceipt(src, "k1", now)
		rejected.Status, rejected.Verified = consign.ReceiptRejected, false
		first := newReceipt(src, "k1", now.Add(1*time.Millisecond))
		sameBatch := newReceipt(src, "k1", now.Add(2*time.Millisecond))
		noKey := newReceipt(src, "", now.Add(3*time.Millisecond))
		noKey2 := newReceipt(src, "", now.Add(4*time.Millisecond))
		elsewhere := newReceipt(otherSrc, "k1", now.Add(5*time.Millisecond))
		insertReceipts(t, s, false, rejected, first, sameBatch, noKey, noKey2, elsewhere)
		require.Equal(t, consign.ReceiptRejected, rejected.Status, "a rejected receipt stays rejected")
		require.Equal(t, consign.ReceiptPending, first.Status, "a rejected receipt does not take the key")
		require.False(t, first.Duplicate)
		require.Equal(t, consign.ReceiptDuplicate, sameBatch.Status, "duplicates are found within one call")
		require.True(t, sameBatch.Duplicate)
		require.Equal(t, consign.ReceiptPending, noKey.Status)
		require.Equal(t, consign.ReceiptPending, noKey2.Status, "receipts without a key are never duplicates")
		require.Equal(t, consign.ReceiptPending, elsewhere.Status, "keys are per source")

		later := newReceipt(src, "k1", now.Add(time.Hour))
		insertReceipts(t, s, false, later)
		require.Equal(t, consign.ReceiptDuplicate, later.Status)
		got, err := s.ReceiptGet(ctx, org.ID, src.ID, later.ID)
		require.NoError(t, err)
		require.Equal(t, later, got, "a duplicate is stored as one")

		require.NoError(t, s.ReceiptsSettle(ctx, []store.ReceiptSettlement{{ID: first.ID, EventID: "evt_1"}}))
		dropped := newReceipt(src, "k1", now.Add(time.Hour))
		dropped.Via = consign.ViaPoll
		fresh := newReceipt(src, "k2", now.Add(time.Hour))
		fresh.Via = consign.ViaPoll
		insertReceipts(t, s, true, dropped, fresh)
		require.True(t, dropped.Duplicate, "a processed receipt keeps its key")
		_, err = s.ReceiptGet(ctx, org.ID, src.ID, dropped.ID)
		requireCode(t, consign.ENOTFOUND, err) // "dropped duplicates are not stored"
		require.Equal(t, consign.ReceiptPending, fresh.Status)
		_, err = s.ReceiptGet(ctx, org.ID, src.ID, fresh.ID)
		require.NoError(t, err)

		// A receipt that did not become an event frees its key.
		require.NoError(t, s.ReceiptsSettle(ctx, []store.ReceiptSettlement{{ID: elsewhere.ID, Reason: "not turned into an event: schema"}}))
		again := newReceipt(otherSrc, "k1", now.Add(2*time.Hour))
		insertReceipts(t, s, false, again)
		require.Equal(t, consign.ReceiptPending, again.Status)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		src := insertSource(t, s, org.ID, now)
		otherSrc := insertSource(t, s, other.ID, now)
		at := func(i int) time.Time { return now.Add(time.Duration(i) * time.Millisecond) }
		a := newReceipt(src, "a", at(0))
		bad := newReceipt(src, "", at(1))
		bad.Verified, bad.Status, bad.Reason = false, consign.ReceiptRejected, "verification failed"
		dup := newReceipt(src, "a", at(2))
		polled := newReceipt(src, "p", at(3))
		polled.Via = consign.ViaPoll
		insertReceipts(t, s, false, a, bad, dup, polled)
		insertReceipts(t, s, false, newReceipt(otherSrc, "x", at(4)))

		list := func(f store.ReceiptFilter) []string {
			t.Helper()
			if f.Limit == 0 {
				f.Limit = 100
			}
			rs, err := s.ReceiptList(ctx, org.ID, src.ID, f)
			require.NoError(t, err)
			return receiptIDs(rs)
		}
		require.Equal(t, []string{polled.ID, dup.ID, bad.ID, a.ID}, list(store.ReceiptFilter{}), "newest first")
		require.Equal(t, []string{bad.ID}, list(store.ReceiptFilter{Verified: ptr(false)}))
		require.Equal(t, []string{polled.ID, dup.ID, a.ID}, list(store.ReceiptFilter{Verified: ptr(true)}))
		require.Equal(t, []string{dup.ID}, list(store.ReceiptFilter{Duplicate: ptr(true)}))
		require.Equal(t, []string{polled.ID, bad.ID, a.ID}, list(store.ReceiptFilter{Duplicate: ptr(false)}))
		require.Equal(t, []string{polled.ID}, list(store.ReceiptFilter{Via: consign.ViaPoll}))
		require.Equal(t, []string{polled.ID, a.ID}, list(store.ReceiptFilter{Status: consign.ReceiptPending}))
		require.Equal(t, []string{dup.ID, a.ID}, list(store.ReceiptFilter{Via: consign.ViaWebhook, Verified: ptr(true)}))
		require.Equal(t, []string{polled.ID, dup.ID}, list(store.ReceiptFilter{Page: store.Page{Limit: 2}}))
		require.Equal(t, []string{bad.ID, a.ID}, list(store.ReceiptFilter{Page: store.Page{Limit: 2, Cursor: dup.ID}}))

		rs, err := s.ReceiptList(ctx, other.ID, src.ID, store.ReceiptFilter{})
		require.NoError(t, err)
		require.Empty(t, rs, "another org sees none of them")
	})

	t.Run("PendingSettle", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		src, otherSrc := insertSource(t, s, org.ID, now), insertSource(t, s, other.ID, now)
		var pending []*consign.Receipt
		for i := range 4 {
			sr := src
			if i == 2 {
				sr = otherSrc
			}
			pending = append(pending, newReceipt(sr, "", now.Add(time.Duration(i)*time.Millisecond)))
		}
		rejected := newReceipt(src, "", now.Add(10*time.Millisecond))
		rejected.Status = consign.ReceiptRejected
		insertReceipts(t, s, false, append(slices.Clone(pending), rejected)...)

		got, err := s.ReceiptsPending(ctx, "", 3)
		require.NoError(t, err)
		require.Equal(t, receiptIDs(pending[:3]), receiptIDs(got), "oldest first, across orgs")
		require.Equal(t, pending[0], got[0], "with everything needed to publish it")
		got, err = s.ReceiptsPending(ctx, got[2].ID, 3)
		require.NoError(t, err)
		require.Equal(t, receiptIDs(pending[3:]), receiptIDs(got))

		require.NoError(t, s.ReceiptsSettle(ctx, []store.ReceiptSettlement{
			{ID: pending[0].ID, EventID: "evt_0"},
			{ID: pending[1].ID, Reason: "not turned into an event: payload does not match"},
			{ID: rejected.ID, EventID: "evt_x"}, // not pending: left alone
			{ID: "rcp_unknown", EventID: "evt_y"},
		}))
		got, err = s.ReceiptsPending(ctx, "", 100)
		require.NoError(t, err)
		require.Equal(t, receiptIDs(pending[2:]), receiptIDs(got))

		r0, err := s.ReceiptGet(ctx, org.ID, src.ID, pending[0].ID)
		require.NoError(t, err)
		require.Equal(t, consign.ReceiptProcessed, r0.Status)
		require.Equal(t, "evt_0", r0.EventID)
		r1, err := s.ReceiptGet(ctx, org.ID, src.ID, pending[1].ID)
		require.NoError(t, err)
		require.Equal(t, consign.ReceiptRejected, r1.Status)
		require.Equal(t, "not turned into an event: payload does not match", r1.Reason)
		require.Empty(t, r1.EventID)
		rx, err := s.ReceiptGet(ctx, org.ID, src.ID, rejected.ID)
		require.NoError(t, err)
		require.Equal(t, rejected, rx)

		// Settling twice changes nothing.
		require.NoError(t, s.ReceiptsSettle(ctx, []store.ReceiptSettlement{{ID: pending[0].ID, EventID: "evt_other"}}))
		r0, err = s.ReceiptGet(ctx, org.ID, src.ID, pending[0].ID)
		require.NoError(t, err)
		require.Equal(t, "evt_0", r0.EventID)
	})
}

func testPoll(t *testing.T, open opener) {
	lease := 6 * time.Minute
	claimPolls := func(t *testing.T, s store.Store, at time.Time) []string {
		t.Helper()
		rows, err := s.SourcePollsClaim(t.Context(), at, at.Add(lease), 10)
		require.NoError(t, err)
		ids := []string{}
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		return ids
	}
	nextDue := func(t *testing.T, s store.Store) time.Time {
		t.Helper()
		next, err := s.SourcePollNextDue(t.Context())
		require.NoError(t, err)
		return next
	}

	t.Run("PollClaimFinish", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		require.True(t, nextDue(t, s).IsZero(), "no source polls")
		insertSource(t, s, org.ID, now) // no poll: never claimed
		late := insertSource(t, s, org.ID, now, withPoll(now.Add(time.Minute)))
		due := insertSource(t, s, org.ID, now, withPoll(now.Add(-time.Minute)))
		requireTime(t, now.Add(-time.Minute), nextDue(t, s))

		rows, err := s.SourcePollsClaim(ctx, now, now.Add(lease), 10)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		require.Equal(t, due.ID, rows[0].ID)
		require.EqualValues(t, 1, rows[0].Version)
		require.Equal(t, due.Poll, rows[0].Poll)
		require.Empty(t, claimPolls(t, s, now), "a leased poll is not claimed again")
		requireTime(t, now.Add(time.Minute), nextDue(t, s), "the leased poll counts at its lease's end")

		require.NoError(t, s.SourcePollFinish(ctx, store.PollResult{SourceID: due.ID, Version: 1, RanAt: now,
			NextAt: now.Add(24 * time.Hour), Error: "GET …: HTTP 500", NewItems: 3}))
		got := getSource(t, s, org.ID, due.ID)
		require.Equal(t, &consign.PollStatus{NextRunAt: ptr(now.Add(24 * time.Hour)), LastRunAt: ptr(now),
			LastError: "GET …: HTTP 500", LastNewItems: 3}, got.PollStatus)
		requireTime(t, now.Add(24*time.Hour), got.NextPollAt)
		require.Equal(t, []string{late.ID}, claimPolls(t, s, now.Add(time.Hour)))
		require.NoError(t, s.SourcePollFinish(ctx, store.PollResult{SourceID: late.ID, Version: 1, RanAt: now.Add(time.Hour),
			NextAt: now.Add(48 * time.Hour)}))
		require.Equal(t, []string{due.ID}, claimPolls(t, s, now.Add(24*time.Hour)), "due again at its next run")

		// A poll that read its window whole moves synced_until on; a failed one keeps it.
		require.NoError(t, s.SourcePollFinish(ctx, store.PollResult{SourceID: due.ID, Version: 1, RanAt: now.Add(24 * time.Hour),
			NextAt: now.Add(48 * time.Hour), SyncedUntil: now.Add(24 * time.Hour)}))
		requireTime(t, now.Add(24*time.Hour), *getSource(t, s, org.ID, due.ID).PollStatus.SyncedUntil)
		require.Contains(t, claimPolls(t, s, now.Add(48*time.Hour)), due.ID)
		require.NoError(t, s.SourcePollFinish(ctx, store.PollResult{SourceID: due.ID, Version: 1, RanAt: now.Add(48 * time.Hour),
			NextAt: now.Add(72 * time.Hour), Error: "GET …: HTTP 500"}))
		requireTime(t, now.Add(24*time.Hour), *getSource(t, s, org.ID, due.ID).PollStatus.SyncedUntil, "a failed poll keeps the window")
	})

	t.Run("PollLeaseRunsOut", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		src := insertSource(t, s, org.ID, now, withPoll(now))
		require.Equal(t, []string{src.ID}, claimPolls(t, s, now))
		require.Empty(t, claimPolls(t, s, now.Add(lease-time.Millisecond)))
		require.Equal(t, []string{src.ID}, claimPolls(t, s, now.Add(lease)), "a dead process's lease runs out")
	})

	t.Run("PollFinishAfterUpdate", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		src := insertSource(t, s, org.ID, now, withPoll(now))
		gone := insertSource(t, s, org.ID, now, withPoll(now))
		require.Len(t, claimPolls(t, s, now), 2)

		// The source changes while its poll runs: its new schedule stands.
		cur := getSource(t, s, org.ID, src.ID)
		cur.NextPollAt = now.Add(2 * time.Hour)
		require.NoError(t, s.SourceUpdate(ctx, cur))
		require.NoError(t, s.SourcePollFinish(ctx, store.PollResult{SourceID: src.ID, Version: 1, RanAt: now, NextAt: now.Add(time.Hour)}))
		got := getSource(t, s, org.ID, src.ID)
		requireTime(t, now.Add(2*time.Hour), got.NextPollAt)
		requireTime(t, now, *got.PollStatus.LastRunAt, "the run is recorded all the same")
		require.Contains(t, claimPolls(t, s, now.Add(2*time.Hour)), src.ID, "the lease ended")

		// The poll is turned off while it runs: it stays off.
		g := getSource(t, s, org.ID, gone.ID)
		g.Poll, g.NextPollAt = nil, time.Time{}
		require.NoError(t, s.SourceUpdate(ctx, g))
		require.NoError(t, s.SourcePollFinish(ctx, store.PollResult{SourceID: gone.ID, Version: g.Version, RanAt: now, NextAt: now.Add(time.Hour)}))
		require.True(t, getSource(t, s, org.ID, gone.ID).NextPollAt.IsZero())
		require.NotContains(t, claimPolls(t, s, now.Add(48*time.Hour)), gone.ID)

		// Finishing the poll of a deleted source is no error.
		require.NoError(t, s.SourcePollFinish(ctx, store.PollResult{SourceID: "src_gone", Version: 1, RanAt: now, NextAt: now}))
	})
}
