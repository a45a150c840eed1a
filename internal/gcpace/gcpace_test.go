package gcpace

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// settings reads the collector's GOGC and memory limit as the runtime reports them.
func settings() (percent, limit int64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()), int64(s[1].Value.Uint64())
}

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestDecide(t *testing.T) {
	t.Parallel()
	noCgroup := t.TempDir()
	tests := []struct {
		name        string
		env         map[string]string
		budget      int64
		wantPaced   bool
		wantPercent int
		wantBudget  int64
	}{
		{name: "nothing set: the defaults", wantPaced: true, wantPercent: DefaultPercent, wantBudget: DefaultBudget},
		{name: "empty values count as unset", env: map[string]string{"GOGC": "", "GOMEMLIMIT": ""}, wantPaced: true, wantPercent: DefaultPercent, wantBudget: DefaultBudget},
		{name: "GOGC set", env: map[string]string{"GOGC": "100"}},
		{name: "GOGC off", env: map[string]string{"GOGC": "off"}},
		{name: "GOMEMLIMIT set", env: map[string]string{"GOMEMLIMIT": "1GiB"}},
		{name: "a budget of the caller's", budget: 64 << 20, wantPaced: true, wantPercent: DefaultPercent, wantBudget: 64 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Decide(Config{Getenv: env(tt.env), Budget: tt.budget, CgroupRoot: noCgroup})
			if p.Paced != tt.wantPaced || p.Percent != tt.wantPercent || p.Budget != tt.wantBudget {
				t.Errorf("Decide = %+v; want paced %v, percent %d, budget %d", p, tt.wantPaced, tt.wantPercent, tt.wantBudget)
			}
			if p.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

// writeFile writes content to root/rel, creating its directories.
func writeFile(tb testing.TB, root, rel, content string) {
	tb.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func TestCgroupLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		files      map[string]string
		membership string
		want       int64
	}{
		{name: "v2 limit", files: map[string]string{"app.slice/memory.max": "536870912\n"}, membership: "0::/app.slice\n", want: 512 << 20},
		{name: "v2 max is no limit", files: map[string]string{"app.slice/memory.max": "max\n"}, membership: "0::/app.slice\n"},
		{name: "v2 in its own namespace", files: map[string]string{"memory.max": "268435456\n"}, membership: "0::/\n", want: 256 << 20},
		{name: "v1 limit", files: map[string]string{"memory/docker/abc/memory.limit_in_bytes": "1073741824\n"}, membership: "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n", want: 1 << 30},
		{name: "v1 mounted at the container's own group", files: map[string]string{"memory/memory.limit_in_bytes": "1073741824\n"}, membership: "4:memory:/docker/abc\n", want: 1 << 30},
		{name: "v1 unlimited", files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, membership: "4:memory:/x\n"},
		{name: "v1 among controllers", files: map[string]string{"memory/x/memory.limit_in_bytes": "2147483648"}, membership: "7:cpuset:/x\n5:memory,hugetlb:/x\n", want: 2 << 30},
		{name: "no files", membership: "0::/\n"},
		{name: "garbage", files: map[string]string{"memory.max": "lots"}, membership: "0::/\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			for rel, content := range tt.files {
				writeFile(t, root, rel, content)
			}
			if got := cgroupLimitOf(root, tt.membership); got != tt.want {
				t.Errorf("cgroupLimitOf = %d; want %d", got, tt.want)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		budget        int64
		live, nonHeap uint64
		want          int64
	}{
		{name: "small heap: the budget", budget: 160 << 20, live: 20 << 20, nonHeap: 10 << 20, want: 160 << 20},
		{name: "at the crossing", budget: 160 << 20, live: 60 << 20, nonHeap: 10 << 20, want: 160 << 20},
		{name: "large heap: the default pace's room", budget: 160 << 20, live: 100 << 20, nonHeap: 10 << 20, want: 260 << 20},
		{name: "no overflow", budget: 160 << 20, live: math.MaxUint64 / 2, want: math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Limit(tt.budget, tt.live, tt.nonHeap); got != tt.want {
				t.Errorf("Limit = %d MiB; want %d MiB", got>>20, tt.want>>20)
			}
		})
	}
}

// TestPaceFollowsTheLiveHeap paces this test process's own collector: GOGC and the
// limit are set while paced, the limit rises above the budget once the live heap
// outgrows it, and everything is as before after stop. Not parallel: it changes the
// process's collector.
func TestPaceFollowsTheLiveHeap(t *testing.T) {
	before, beforeLimit := settings()

	const budget = 32 << 20
	plan, stop := Pace(Config{Getenv: env(nil), Budget: budget, Interval: time.Millisecond, CgroupRoot: t.TempDir()})
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	if !plan.Paced {
		t.Fatalf("not paced: %s", plan)
	}
	if percent, limit := settings(); percent != DefaultPercent || limit != budget {
		t.Errorf("while paced: GOGC %d, memory limit %d; want %d and the budget %d", percent, limit, DefaultPercent, budget)
	}

	// 64 MiB live, twice the budget: the limit must make room for the default pace.
	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		_, limit := settings()
		if limit >= 2*64<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("memory limit %d MiB with 64 MiB live; want at least 128 MiB", limit>>20)
		}
		time.Sleep(5 * time.Millisecond)
	}
	runtime.KeepAlive(live)

	stop()
	stopped = true
	if percent, limit := settings(); percent != before || limit != beforeLimit {
		t.Errorf("after stop: GOGC %d, memory limit %d; want %d and %d as before", percent, limit, before, beforeLimit)
	}
}

func TestPaceLeavesTheOperatorsSettings(t *testing.T) {
	percent, limit := settings()
	plan, stop := Pace(Config{Getenv: env(map[string]string{"GOGC": "150"})})
	defer stop()
	if plan.Paced {
		t.Fatalf("paced with GOGC set: %s", plan)
	}
	if p, l := settings(); p != percent || l != limit {
		t.Errorf("GOGC %d, memory limit %d: Pace changed them (from %d and %d) though the environment sets GOGC", p, l, percent, limit)
	}
}
