package consign

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error codes. Each maps to one HTTP status (HTTPStatus).
const (
	EBADREQUEST   = "bad_request"  // the request cannot be read: bad JSON, unknown fields, wrong types (400)
	EINVALID      = "invalid"      // the request is well-formed but fails validation (422)
	ENOTFOUND     = "not_found"    // the resource does not exist or is not visible to the caller (404)
	ECONFLICT     = "conflict"     // the resource exists already (409)
	EUNAUTHORIZED = "unauthorized" // no or bad credentials (401)
	EFORBIDDEN    = "forbidden"    // credentials valid but not allowed (403)
	ETOOLARGE     = "too_large"    // body or list over its limit (413)
	EGONE         = "gone"         // the resource existed and is no longer usable: a used or expired link (410)
	EMETHOD       = "method"       // the path exists, the method does not (405)
	ETIMEOUT      = "timeout"      // the request arrived too slowly (408)
	ELIMIT        = "limit"        // too many requests or a quota (429)
	EUNAVAILABLE  = "unavailable"  // shutting down or a dependency is down (503)
	EINTERNAL     = "internal"     // a bug or an unexpected failure (500)
)

// httpStatus maps each error code to the HTTP status the API and the dashboard answer
// with; HTTPStatus is its only reader.
var httpStatus = map[string]int{
	EBADREQUEST:   http.StatusBadRequest,
	EINVALID:      http.StatusUnprocessableEntity,
	ENOTFOUND:     http.StatusNotFound,
	ECONFLICT:     http.StatusConflict,
	EUNAUTHORIZED: http.StatusUnauthorized,
	EFORBIDDEN:    http.StatusForbidden,
	ETOOLARGE:     http.StatusRequestEntityTooLarge,
	EGONE:         http.StatusGone,
	EMETHOD:       http.StatusMethodNotAllowed,
	ETIMEOUT:      http.StatusRequestTimeout,
	ELIMIT:        http.StatusTooManyRequests,
	EUNAVAILABLE:  http.StatusServiceUnavailable,
	EINTERNAL:     http.StatusInternalServerError,
}

// HTTPStatus returns the HTTP status of an error code: 500 for EINTERNAL and for any code
// not listed above, so that a reply always has a status.
func HTTPStatus(code string) int {
	if s, ok := httpStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// FieldError names one invalid field of a request and says what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an application error: a code that decides the HTTP status and a message a
// person can act on. Lower layers wrap it with %w; errors.As finds it.
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
	// RetryAfter, when positive, is how long the client should wait before trying again;
	// replies carry it as Retry-After (whole seconds, rounded up).
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string {
	if len(e.Fields) == 1 {
		return fmt.Sprintf("%s: %s", e.Fields[0].Field, e.Fields[0].Message)
	}
	return e.Message
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error about one field.
func Invalid(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Code: EINVALID, Message: field + ": " + msg, Fields: []FieldError{{Field: field, Message: msg}}}
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	} else if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a generic
// message for internal errors (their details go to the log, not to clients).
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	} else if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}

// RetryAfterSeconds writes a wait as a Retry-After value: whole seconds, rounded up, at
// least 1.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// Validation collects field errors so that one reply can name every invalid field.
type Validation struct{ fields []FieldError }

// Add records that field is invalid.
func (v *Validation) Add(field, format string, args ...any) {
	v.fields = append(v.fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns nil when nothing was added, else an EINVALID *Error listing every field.
func (v *Validation) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	msg := v.fields[0].Field + ": " + v.fields[0].Message
	if len(v.fields) > 1 {
		msg = fmt.Sprintf("%s (and %d more)", msg, len(v.fields)-1)
	}
	return &Error{Code: EINVALID, Message: msg, Fields: v.fields}
}
