package sender

import (
	"net/http"
	"strings"
	"time"
)

// MaxRetryAfter caps the wait a receiver can impose with Retry-After.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header value, given either as delta
// seconds ("120") or as an HTTP date, and returns how long to wait from
// now, capped at MaxRetryAfter. ok is false when v is empty or malformed,
// or asks for no wait at all (0, or a date that is not in the future). In
// that case the header should be ignored.
func ParseRetryAfter(v string, now time.Time) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		const capSecs = int64(MaxRetryAfter / time.Second)
		var secs int64
		for i := 0; i < len(v) && secs <= capSecs; i++ {
			secs = secs*10 + int64(v[i]-'0')
		}
		if secs == 0 {
			return 0, false
		}
		return min(time.Duration(secs)*time.Second, MaxRetryAfter), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	wait = t.Sub(now)
	if wait <= 0 {
		return 0, false
	}
	return min(wait, MaxRetryAfter), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
