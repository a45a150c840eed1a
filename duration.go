package consign

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// Duration is a time.Duration that travels in JSON as a string such as "5s" or "72h".
type Duration time.Duration

// MarshalJSON writes the duration as Go's duration string ("1h30m0s").
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a duration string; days are accepted as "d" ("3d" = 72h) since
// failure policies and retention are naturally said in days.
//
// A bad value is reported as a *json.UnmarshalTypeError, which the JSON decoder fills
// with the field's path, so that an API error can name the field.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[Duration]()}
	}
	v, err := ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: strconv.Quote(s), Type: reflect.TypeFor[Duration]()}
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a Go duration string, also accepting a whole number of days ("3d").
func ParseDuration(s string) (time.Duration, error) {
	var days int
	if n, err := fmt.Sscanf(s, "%dd", &days); err == nil && n == 1 && fmt.Sprintf("%dd", days) == s {
		if days < 0 || days > 3650 {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`%q is not a duration; use a string such as "30s", "5m" or "72h"`, s)
	}
	return v, nil
}
