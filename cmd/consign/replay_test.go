package main_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestReplayResumesAfterCrash: a replay killed mid-job (SIGKILL of the real binary)
// resumes from its cursor after a restart and completes; every past event gets exactly
// one delivery to the endpoint, and reaches it — again only when its attempt was in
// flight at the kill (at least once).
func TestReplayResumesAfterCrash(t *testing.T) {
	t.Parallel()
	const (
		events    = 3000
		rate      = 400 // deliveries a second: the replay takes several seconds
		burst     = 10
		deliverBy = 60 * time.Second
	)
	bin := consignBinary(t)
	dataDir := t.TempDir()
	rcv := newReceiver()
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)
	srv := startServer(t, bin, dataDir, nil)
	api := &apiClient{base: srv.url, http: &http.Client{Timeout: 10 * time.Second}}

	var org struct{ ID string }
	api.must(t, "POST", "/v1/orgs", map[string]any{"name": "replay crash"}, http.StatusCreated, &org)
	since := time.Now().UTC().Add(-time.Second)
	acked := map[string]int64{}
	for first := int64(1); first <= events; first += 1000 {
		seqs := make([]int64, 1000)
		for i := range seqs {
			seqs[i] = first + int64(i)
		}
		ids, status, body, err := api.publish("/v1/orgs/"+org.ID+"/events", seqs)
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("publish: %d %v: %s", status, err, body)
		}
		for i, id := range ids {
			acked[id] = seqs[i]
		}
	}
	// The partner joins after the events were published.
	var ep struct{ ID, Secret string }
	api.must(t, "POST", "/v1/orgs/"+org.ID+"/endpoints", map[string]any{"url": hook.URL + "/hook", "topics": []string{"order.*"},
		"rate_limit": rate, "burst_limit": burst}, http.StatusCreated, &ep)
	rcv.setSecret(ep.Secret)
	var job jobReply
	api.must(t, "POST", "/v1/orgs/"+org.ID+"/endpoints/"+ep.ID+"/replay", map[string]any{"since": since}, http.StatusAccepted, &job)

	// Kill once the job has taken a few steps and sent some, long before it is done.
	deadline := time.Now().Add(30 * time.Second)
	for {
		api.must(t, "GET", "/v1/orgs/"+org.ID+"/jobs/"+job.ID, nil, http.StatusOK, &job)
		delivered, _, _ := rcv.state()
		if job.Progress.Created > 1200 && len(delivered) >= 300 {
			break
		}
		if time.Now().After(deadline) || job.Status != "running" {
			t.Fatalf("the replay did not get going in time: %+v, %d delivered", job, len(delivered))
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.kill(t)
	// Requests the server had sent in full before it died are still being counted by the
	// receiver's handlers for a moment: they were sent before the kill.
	time.Sleep(time.Second)
	deliveredAtKill, _, _ := rcv.state()
	t.Logf("killed with the job at %d scanned, %d created of %d; %d delivered", job.Progress.Scanned, job.Progress.Created, events, len(deliveredAtKill))
	if job.Progress.Created >= events {
		t.Fatal("the job had created every delivery before the kill: the test proved nothing about resuming")
	}

	restart := time.Now()
	srv2 := startServer(t, bin, dataDir, nil)
	api.base = srv2.url
	for {
		api.must(t, "GET", "/v1/orgs/"+org.ID+"/jobs/"+job.ID, nil, http.StatusOK, &job)
		delivered, _, _ := rcv.state()
		if job.Status == "completed" && len(delivered) >= events {
			break
		}
		if time.Since(restart) > deliverBy {
			t.Fatalf("%v after the restart: job %+v, %d of %d delivered", deliverBy, job, len(delivered), events)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive about now
	t.Logf("job completed and every event delivered %v after the restart", time.Since(restart).Round(time.Millisecond))
	if job.Progress.Created != events || job.Progress.Scanned != events {
		t.Errorf("job progress %+v, want %d scanned and %d created", job.Progress, events, events)
	}

	// The store holds exactly one delivery of each event to the endpoint.
	perEvent := map[string]int{}
	cursor := ""
	for {
		var page struct {
			Data []struct {
				EventID string `json:"event_id"`
			}
			NextCursor *string `json:"next_cursor"`
		}
		api.must(t, "GET", "/v1/orgs/"+org.ID+"/deliveries?limit=500&endpoint_id="+ep.ID+"&cursor="+url.QueryEscape(cursor), nil, http.StatusOK, &page)
		for _, d := range page.Data {
			perEvent[d.EventID]++
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if len(perEvent) != events {
		t.Errorf("%d events have a delivery to the endpoint, want %d", len(perEvent), events)
	}
	for id, n := range perEvent {
		if n != 1 {
			t.Errorf("event %s has %d deliveries to the endpoint", id, n)
		}
	}

	delivered, _, bad := rcv.state()
	for _, b := range bad[:min(len(bad), 5)] {
		t.Errorf("receiver: %s", b)
	}
	// At least once: an attempt sent before the kill whose outcome the store had not yet
	// recorded is sent again after the restart. Nothing sent only after the restart may
	// arrive twice, and nothing arrives more than twice.
	dups := 0
	for id, seq := range acked {
		switch n := delivered[id]; {
		case n == 0:
			t.Errorf("event %s (seq %d) never delivered", id, seq)
		case n > 2:
			t.Errorf("event %s (seq %d) delivered %d times", id, seq, n)
		case n == 2:
			dups++
			if deliveredAtKill[id] == 0 {
				t.Errorf("event %s (seq %d) first delivered after the restart, yet delivered twice", id, seq)
			}
		}
	}
	t.Logf("%d deliveries sent twice (sent before the kill, not yet recorded)", dups)
	if len(delivered) != events {
		t.Errorf("the receiver got %d distinct events, want %d", len(delivered), events)
	}
}

// jobReply is a job as the API shows it.
type jobReply struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Progress struct {
		Scanned int `json:"scanned"`
		Created int `json:"created"`
	} `json:"progress"`
}

func (j jobReply) String() string {
	return fmt.Sprintf("%s %s (scanned %d, created %d)", j.ID, j.Status, j.Progress.Scanned, j.Progress.Created)
}
