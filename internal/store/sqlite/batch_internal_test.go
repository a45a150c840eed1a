package sqlite

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

func TestNumberParams(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		q      string
		shared int
		want   string
	}{
		{`(?, ?1, ?2, ?, '', ?3), (?, ?1, ?2, ?, '', ?3)`, 3, `(?4, ?1, ?2, ?5, '', ?3), (?6, ?1, ?2, ?7, '', ?3)`},
		{`(?1, ?)`, 1, `(?1, ?2)`},
		{`VALUES (?)`, 12, `VALUES (?13)`},
	} {
		require.Equal(t, tt.want, numberParams(tt.q, tt.shared), tt.q)
	}
}

// TestEventsInsertSharedValues: events of several orgs, types and times, with and without
// keys, interleaved in one write (as a group commit of several requests writes them, the
// org, type and time bound once per run of rows that share them) are each stored with
// their own values, found by their keys, and listed newest first.
func TestEventsInsertSharedValues(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, org, other, at := openWithTwoOrgs(t)
	var ws []*store.EventWrite
	orgs := []string{org.ID, other.ID}
	// 450 events: runs of 1 to 3 that share org, type and time, and a run of 250 (past
	// a statement's 200 rows); every fifth has keys, every seventh an ordering key.
	for i := 0; len(ws) < 450; i++ {
		run := 1 + i%3
		if i == 10 {
			run = 250
		}
		created := at.Add(time.Duration(i) * time.Millisecond)
		for range run {
			n := len(ws)
			ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, created), OrgID: orgs[i%2], Type: fmt.Sprintf("t%d.x", i%4),
				Payload: []byte(fmt.Sprintf(`{"n":%d}`, n)), CreatedAt: created}
			if n%7 == 0 {
				ev.OrderingKey = "ok"
			}
			w := &store.EventWrite{Event: ev}
			if n%5 == 0 {
				w.Keys = []string{fmt.Sprint("k", n)}
			}
			ws = append(ws, w)
		}
	}
	want := map[string]consign.Event{}
	for _, w := range ws {
		want[w.Event.ID] = *w.Event
	}
	require.NoError(t, db.EventsInsert(ctx, ws))
	for i, w := range ws {
		got, err := db.EventGet(ctx, w.Event.OrgID, w.Event.ID)
		require.NoError(t, err, "event %d", i)
		e := want[w.Event.ID]
		require.Equal(t, []any{e.OrgID, e.Type, string(e.Payload), e.OrderingKey, e.CreatedAt.UnixMilli()},
			[]any{got.OrgID, got.Type, string(got.Payload), got.OrderingKey, got.CreatedAt.UnixMilli()}, "event %d", i)
		if len(w.Keys) > 0 {
			found, err := db.EventList(ctx, e.OrgID, store.EventFilter{Key: w.Keys[0]})
			require.NoError(t, err)
			require.Len(t, found, 1, "key %s", w.Keys[0])
			require.Equal(t, e.ID, found[0].ID)
		}
	}
	for _, orgID := range orgs {
		var ids []string
		for _, w := range ws {
			if w.Event.OrgID == orgID {
				ids = append(ids, w.Event.ID)
			}
		}
		slices.Sort(ids)
		slices.Reverse(ids)
		var listed []string
		f := store.EventFilter{}
		for {
			page, err := db.EventList(ctx, orgID, f)
			require.NoError(t, err)
			for _, e := range page {
				listed = append(listed, e.ID)
			}
			if len(page) < f.Page.Size() {
				break
			}
			f.Page.Cursor = page[len(page)-1].ID
		}
		require.Equal(t, ids, listed, "an org's events newest first, page by page")
	}
}
