package sqlite

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQueryPlans checks how SQLite runs the dispatcher's hot statements: each finds its
// rows through the index named, never by reading an endpoint's every delivery (which,
// with a backlog of a million, is what a wrong plan costs on every claim or insert).
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	db, err := Open(t.Context(), t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	for _, c := range []struct {
		name, sql string
		args      int
		want      []string // in the plan, in order
	}{
		{"claim", claimSQL, 3, []string{"USING INDEX deliveries_due (endpoint_id=? AND next_attempt_at<?)",
			"USING INDEX deliveries_key (endpoint_id=? AND ordering_key=? AND sequence<?)"}},
		{"next due", nextDueSQL, 1, []string{"USING INDEX deliveries_due (endpoint_id=? AND next_attempt_at<?)",
			"USING INDEX deliveries_key (endpoint_id=? AND ordering_key=? AND sequence<?)"}},
		{"lease", leaseSQL, 3, []string{"INDEX sqlite_autoindex_deliveries_1 (id=?)"}},
		{"outcome", outcomeSQL, 5, []string{"INDEX sqlite_autoindex_deliveries_1 (id=?)"}},
		{"finished", finishedSQL, 4, []string{"INDEX sqlite_autoindex_deliveries_1 (id=?)"}},
		{"supersede", supersedeSQL, 4, []string{"USING INDEX deliveries_key (endpoint_id=? AND ordering_key=?)"}},
		{"behind", behindSQL, 3, []string{"INDEX deliveries_key (endpoint_id=? AND ordering_key=? AND sequence<?)"}},
		{"failures", failuresSQL, 3, []string{"INDEX attempts_failed (endpoint_id=? AND started_at>?)"}},
		{"resume", resumeStep, 3, []string{"INDEX deliveries_unsent (endpoint_id=? AND status=?)",
			"INDEX deliveries_key (endpoint_id=? AND ordering_key=? AND sequence<?)"}},
		// Searches by business key: the key's index rows, then each one's event or
		// deliveries by ID, never an org's every event or delivery.
		{"events by key", eventsByKeySQL + ` AND e.type = ? ORDER BY k.event_id DESC LIMIT ?`, 5,
			[]string{"SEARCH k USING PRIMARY KEY (org_id=? AND key=? AND event_id<?)", "SEARCH e USING INDEX sqlite_autoindex_events_1 (id=?)"}},
		// The key's deliveries by event: only an event's own are sorted, so LIMIT stops
		// after the page's events.
		{"deliveries by key", deliveriesByKeySQL + ` AND d.status = ? ORDER BY k.event_id DESC, d.id DESC LIMIT ?`, 7,
			[]string{"SEARCH k USING PRIMARY KEY (org_id=? AND key=? AND event_id<?)", "SEARCH d USING INDEX deliveries_event (event_id=?)",
				"USE TEMP B-TREE FOR LAST TERM OF ORDER BY"}},
		{"cursor's event", cursorEventSQL, 2, []string{"SEARCH deliveries USING INDEX sqlite_autoindex_deliveries_1 (id=?)"}},
		// An event's deliveries (GET …/events lists each event's).
		{"deliveries of event", deliveriesOfEventSQL + ` AND d.event_id = ? ORDER BY d.id DESC LIMIT ?`, 4,
			[]string{"SEARCH d USING INDEX deliveries_event (event_id=?)"}},
		// The head lookup of the trigger deliveries_next_of_key (migration 6).
		{"head of key", `SELECT h.rowid FROM deliveries h WHERE h.endpoint_id = ? AND h.ordering_key = ? AND h.ordering_key <> ''
			AND h.status IN ('pending', 'delivering', 'paused') ORDER BY h.sequence LIMIT 1`, 2,
			[]string{"INDEX deliveries_key (endpoint_id=? AND ordering_key=?)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows, err := db.w.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+c.sql, make([]any, c.args)...)
			require.NoError(t, err)
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
				plan = append(plan, detail)
			}
			require.NoError(t, rows.Err())
			text := strings.Join(plan, "\n")
			at := 0
			for _, w := range c.want {
				i := strings.Index(text[at:], w)
				require.GreaterOrEqual(t, i, 0, "the plan lacks %q after position %d:\n%s", w, at, text)
				at += i + len(w)
			}
			for _, l := range plan {
				require.False(t, strings.HasSuffix(l, "(endpoint_id=?)") && !strings.Contains(l, "deliveries_due"),
					"reads an endpoint's every row:\n%s", text)
			}
		})
	}
}
