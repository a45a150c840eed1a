package bench

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"
)

// Targets of the backlog figure (the spec's table): the process's memory with the
// backlog queued, and the healthy endpoint's rate next to it as a share of its rate alone.
const (
	targetBacklogRSS   = 300 << 20
	targetBacklogShare = 0.9
)

// Backlog is the isolation figure: deliveries queued for an endpoint that is down, and
// what they cost everyone else. A healthy endpoint's 1→1 rate is measured alone (after a
// run of the same size to warm up), then again while another org's endpoint, which
// refuses every connection, has Config.Backlog deliveries queued (after a run of the same
// size, during which the store settles from the queueing's gigabyte of writes); with an
// in-process server, the process's peak memory from the start of the queueing to the end.
type Backlog struct {
	// Queued is the events (each one delivery to the down endpoint) accepted; Want those
	// asked for. QueueSeconds is how long publishing them took.
	Queued       int     `json:"queued"`
	Want         int     `json:"want"`
	QueueSeconds float64 `json:"queue_seconds"`
	// Capped says the queueing hit its cap (4 × Config.Duration) first; Interrupted that
	// the run was stopped.
	Capped      bool   `json:"capped,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
	Errors      int    `json:"errors,omitempty"`
	FirstError  string `json:"first_error,omitempty"`
	// Alone and Beside are the healthy endpoint's figures, alone and next to the backlog.
	Alone  *Throughput `json:"alone"`
	Beside *Throughput `json:"beside_backlog"`
	// Share is Beside's rate over Alone's.
	Share float64 `json:"share"`
	// PeakRSSBytes is the process's peak resident memory (VmHWM, reset when the
	// queueing starts) until the end of the second measurement: server, receiver and
	// clients together. 0 when not measured (a server given by --url), with RSSError
	// saying why when it could not be read.
	PeakRSSBytes int64  `json:"peak_rss_bytes,omitempty"`
	RSSError     string `json:"rss_error,omitempty"`
	// Met says every delivery was queued, the share is at least 90 % and the peak, where
	// measured, at most 300 MB.
	Met bool `json:"met"`
}

// backlog measures the Backlog figure.
func (r *runner) backlog(ctx context.Context) error {
	bl := &Backlog{Want: r.cfg.Backlog}
	org, key, err := r.newOrg(ctx, ScenarioBacklog)
	if err != nil {
		return err
	}
	eps, err := r.newEndpoints(ctx, org, key, ScenarioBacklog, 1)
	if err != nil {
		return err
	}
	healthy := func() *Throughput {
		return r.deliver(ctx, org, key, ScenarioBacklog, eps, figure{key: ScenarioBacklog}, r.cfg.FlatOut)
	}
	// A run cut short leaves the endpoint deactivated (see deliver): what follows would
	// measure nothing.
	unfinished := func(t *Throughput, what string) error {
		if t.Done < t.Want {
			return fmt.Errorf("the healthy endpoint's %s run did %s of %s deliveries within %s", what,
				commas(int64(t.Done)), commas(int64(t.Want)), r.cfg.Duration)
		}
		return nil
	}
	if err := unfinished(healthy(), "warm-up"); err != nil {
		return err
	}
	bl.Alone = healthy()
	if err := unfinished(bl.Alone, "first measured"); err != nil {
		return err
	}
	r.p.printf("  (backlog: a healthy endpoint alone: %s /s)\n", commas(int64(math.Round(bl.Alone.PerSecond))))

	downOrg, downKey, err := r.newOrg(ctx, ScenarioBacklog)
	if err != nil {
		return err
	}
	down, err := closedPort()
	if err != nil {
		return err
	}
	if err := r.api.call(ctx, http.MethodPost, "/v1/orgs/"+downOrg+"/endpoints", downKey, map[string]any{
		"url": "http://" + down + "/down", "topics": []string{r.eventType()}, "description": "consign bench: down",
	}, nil); err != nil {
		return fmt.Errorf("create the down endpoint: %w", err)
	}

	inProcess := r.rep.InProcess
	if inProcess {
		// The peak is the server's and this scenario's: the garbage earlier scenarios left
		// in the process is given back first, the receiver's per-delivery records of
		// those scenarios included, and what the C allocator keeps of earlier rounds'
		// stores (--repeat). What the server holds stays: its page caches are full by
		// now, as in a server that has been running.
		r.rcv.forget()
		debug.FreeOSMemory()
		freeCMemory()
		if err := resetPeakRSS(); err != nil {
			bl.RSSError = err.Error()
		}
	}
	qctx, cancel := context.WithTimeout(ctx, 4*r.cfg.Duration)
	start := time.Now()
	t := r.publishBatches(qctx, downOrg, downKey, bl.Want, nil)
	bl.QueueSeconds = time.Since(start).Seconds()
	if t.done < bl.Want {
		bl.Capped, bl.Interrupted = ended(qctx)
	}
	cancel()
	bl.Queued, bl.Errors, bl.FirstError = t.done, t.errs, t.firstErr
	r.p.printf("  (backlog: %s deliveries queued for an endpoint that refuses connections, in %.1f s)\n",
		commas(int64(bl.Queued)), bl.QueueSeconds)

	// One run lets the writes of the queueing settle (the store's checkpoints).
	if err := unfinished(healthy(), "settling"); err != nil {
		return err
	}
	bl.Beside = healthy()
	if inProcess && bl.RSSError == "" {
		if _, hwm, err := readMemory("/proc/self/status"); err != nil {
			bl.RSSError = err.Error()
		} else {
			bl.PeakRSSBytes = hwm
		}
	}
	bl.finish()
	r.rep.Backlog = bl
	r.p.printf("%s\n", bl.line(r.cfg))
	return nil
}

// closedPort returns a loopback address nothing listens on (connections are refused).
func closedPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a closed port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// resetPeakRSS resets this process's VmHWM to its current RSS (Linux, since 4.0).
func resetPeakRSS() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS: %w", err)
	}
	return nil
}

func (bl *Backlog) finish() {
	if bl.Alone != nil && bl.Beside != nil && bl.Alone.PerSecond > 0 {
		bl.Share = bl.Beside.PerSecond / bl.Alone.PerSecond
	}
	bl.Met = bl.Queued == bl.Want && bl.Share >= targetBacklogShare &&
		(bl.PeakRSSBytes == 0 || bl.PeakRSSBytes <= targetBacklogRSS)
}

// line is the backlog figure's text line.
func (bl *Backlog) line(cfg Config) string {
	s := fmt.Sprintf("%s deliveries queued for a down endpoint: a healthy endpoint keeps %.0f %% of its rate (%s, against %s alone; target ≥ 90 %%)",
		commas(int64(bl.Want)), 100*bl.Share, healthyRate(bl.Beside), healthyRate(bl.Alone))
	switch {
	case bl.PeakRSSBytes > 0:
		s += fmt.Sprintf(", peak RSS %s MB (VmHWM of the whole process meanwhile; target ≤ 300 MB)", commas(bl.PeakRSSBytes>>20))
	case bl.RSSError != "":
		s += ", peak RSS unknown (" + bl.RSSError + ")"
	default:
		s += ", peak RSS not measured (the server runs in another process)"
	}
	s += ": " + metText(bl.Met)
	switch {
	case bl.Capped:
		s += fmt.Sprintf(" [queueing cut short at the %s cap: %s of %s queued]", 4*cfg.Duration, commas(int64(bl.Queued)), commas(int64(bl.Want)))
	case bl.Interrupted:
		s += fmt.Sprintf(" [interrupted: %s of %s queued]", commas(int64(bl.Queued)), commas(int64(bl.Want)))
	case bl.Queued < bl.Want:
		s += fmt.Sprintf(" [only %s of %s queued]", commas(int64(bl.Queued)), commas(int64(bl.Want)))
	}
	if bl.Errors > 0 {
		s += fmt.Sprintf(" [%s errors queueing; first: %s]", commas(int64(bl.Errors)), bl.FirstError)
	}
	for _, t := range []*Throughput{bl.Alone, bl.Beside} {
		if t.Done < t.Want {
			s += fmt.Sprintf(" [a healthy run did %s of %s deliveries]", commas(int64(t.Done)), commas(int64(t.Want)))
		}
	}
	return s
}

// healthyRate is a healthy run's rate, with its CPU per delivery when known: on a machine
// shared with other work the CPU varies less than the rate.
func healthyRate(t *Throughput) string {
	s := commas(int64(math.Round(t.PerSecond))) + " /s"
	if t.CPUPerUnit > 0 {
		s += fmt.Sprintf(" at %.0f µs of CPU each", t.CPUPerUnit)
	}
	return s
}
