package main_test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestServeCollectorSettings runs the real server and reads its collector's settings
// where an operator would, in /metrics: with GOGC and GOMEMLIMIT unset Consign's pace
// (GOGC 400 within a 160 MiB soft limit while the heap is small), with either set the
// environment's values untouched.
func TestServeCollectorSettings(t *testing.T) {
	t.Parallel()
	bin := consignBinary(t)
	const noLimit = 9.223372036854776e+18 // math.MaxInt64 as Prometheus prints it
	tests := []struct {
		name      string
		env       []string
		wantGOGC  float64
		wantLimit float64
	}{
		// Empty values are unset, for the runtime and for Consign alike; they also hide a
		// GOGC the test's own environment may carry.
		{name: "unset: Consign's pace", env: []string{"GOGC=", "GOMEMLIMIT="}, wantGOGC: 400, wantLimit: 160 << 20},
		{name: "GOGC set", env: []string{"GOGC=150", "GOMEMLIMIT="}, wantGOGC: 150, wantLimit: noLimit},
		{name: "GOMEMLIMIT set", env: []string{"GOGC=", "GOMEMLIMIT=512MiB"}, wantGOGC: 100, wantLimit: 512 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, bin, t.TempDir(), tt.env)
			got := scrape(t, srv.url+"/metrics", "go_gc_gogc_percent", "go_gc_gomemlimit_bytes")
			if got["go_gc_gogc_percent"] != tt.wantGOGC || got["go_gc_gomemlimit_bytes"] != tt.wantLimit {
				t.Errorf("GOGC %v, memory limit %v; want %v and %v", got["go_gc_gogc_percent"], got["go_gc_gomemlimit_bytes"], tt.wantGOGC, tt.wantLimit)
			}
		})
	}
}

// scrape reads the named unlabelled gauges from a Prometheus text page.
func scrape(tb testing.TB, url string, names ...string) map[string]float64 {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	got := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, n := range names {
			if name == n {
				v, err := strconv.ParseFloat(value, 64)
				if err != nil {
					tb.Fatalf("%s: %v", sc.Text(), err)
				}
				got[n] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			tb.Fatalf("%s not in %s", n, url)
		}
	}
	return got
}
