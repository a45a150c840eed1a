package inbound

import (
	"errors"
	"fmt"
	"strings"
	"time"
	// Time zone data is compiled in so that cron schedules in a time zone work in the
	// smallest containers, which have no /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"

	"github.com/consign-dev/consign"
)

// parseCron parses a five-field cron expression (minute, hour, day of month, month, day
// of week) read in the named time zone.
func parseCron(spec, timezone string) (cron.Schedule, *time.Location, error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, nil, errors.New(`give the time zone in "timezone", not in the expression`)
	}
	if timezone == "" || timezone == "Local" {
		return nil, nil, fmt.Errorf("time zone %q: name an IANA zone such as \"UTC\" or \"America/New_York\"", timezone)
	}
	loc, err := time.LoadLocation(timezone)
	if err != nil {
		return nil, nil, fmt.Errorf("unknown time zone %q: name an IANA zone such as \"UTC\" or \"America/New_York\"", timezone)
	}
	p := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
	sched, err := p.Parse(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("%q is not a five-field cron expression (minute hour day-of-month month day-of-week, such as \"0 0 * * *\"): %v", spec, err)
	}
	return sched, loc, nil
}

// NextRun returns when a poll runs next after t: t plus the interval, or the cron
// schedule's next time after t in the poll's time zone. It is a pure function of its
// arguments; the result is in UTC.
func NextRun(p *consign.SourcePoll, t time.Time) (time.Time, error) {
	if p.Cron == "" {
		if p.Interval <= 0 {
			return time.Time{}, errors.New("poll has neither interval nor cron")
		}
		return t.Add(time.Duration(p.Interval)).UTC(), nil
	}
	sched, loc, err := parseCron(p.Cron, p.Timezone)
	if err != nil {
		return time.Time{}, err
	}
	next := sched.Next(t.In(loc))
	if next.IsZero() {
		return time.Time{}, fmt.Errorf("%q never comes round (no such date)", p.Cron)
	}
	return next.UTC(), nil
}

// nextAfterRun returns when a poll that started at started and ended at now runs next:
// an interval counts from the start of the run; a cron schedule's next time after the
// end, so a long run is not followed at once by another.
func nextAfterRun(p *consign.SourcePoll, started, now time.Time) (time.Time, error) {
	if p.Cron != "" {
		return NextRun(p, now)
	}
	next, err := NextRun(p, started)
	if err != nil {
		return time.Time{}, err
	}
	return maxTime(next, now), nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
