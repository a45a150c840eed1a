package client

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Error is a reply of status 400 or more: the API's problem document (RFC 9457). Find
// it with errors.As:
//
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnprocessableEntity {
//		for _, f := range apiErr.Errors {
//			fmt.Println(f.Field, f.Message)
//		}
//	}
type Error struct {
	// Status is the HTTP status of the reply.
	Status int `json:"status"`
	// Type names the kind of problem, "urn:consign:error:<code>"; Code returns the code.
	Type string `json:"type"`
	// Title is the status's text, such as "Unprocessable Entity".
	Title string `json:"title"`
	// Detail says what was wrong, in words a person can act on.
	Detail string `json:"detail"`
	// Errors names each invalid field of the request (validation errors).
	Errors []FieldError `json:"errors,omitempty"`
}

// Error codes, as Error.Code returns them.
const (
	CodeBadRequest   = "bad_request"  // 400: the body cannot be read (bad JSON, unknown field, wrong type)
	CodeInvalid      = "invalid"      // 422: a field is invalid; see Errors
	CodeNotFound     = "not_found"    // 404: no such object, or not visible to the key
	CodeConflict     = "conflict"     // 409: the object exists already, or its state does not allow it
	CodeUnauthorized = "unauthorized" // 401: no key, or a key the server does not know
	CodeForbidden    = "forbidden"    // 403: the key may not do this (an org key on an admin route)
	CodeTooLarge     = "too_large"    // 413: the body is over the server's limit
	CodeTimeout      = "timeout"      // 408: the body arrived too slowly
	CodeLimit        = "limit"        // 429: too many requests
	CodeUnavailable  = "unavailable"  // 503: the server is shutting down or its store does not answer
	CodeInternal     = "internal"     // 500: a failure on the server
)

// Code returns the problem's code ("invalid", "not_found"…), or "" when the reply was
// not a Consign problem document.
func (e *Error) Code() string {
	code, ok := strings.CutPrefix(e.Type, "urn:consign:error:")
	if !ok {
		return ""
	}
	return code
}

// Error implements error: the detail, every invalid field, and the status.
func (e *Error) Error() string {
	msg := e.Detail
	if len(e.Errors) > 1 {
		parts := make([]string, len(e.Errors))
		for i, f := range e.Errors {
			parts[i] = f.Field + ": " + f.Message
		}
		msg = strings.Join(parts, "; ")
	}
	if msg == "" {
		return fmt.Sprintf("consign: %d %s", e.Status, e.Title)
	}
	return fmt.Sprintf("consign: %s (%d %s)", msg, e.Status, e.Title)
}

// newError reads a failed reply: a problem document, or whatever a proxy in between
// answered, kept short.
func newError(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		var p Error
		if json.Unmarshal(body, &p) == nil && (p.Detail != "" || p.Type != "") {
			p.Status = resp.StatusCode // the reply's status is the truth
			if p.Title == "" {
				p.Title = e.Title
			}
			return &p
		}
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
		text += "…"
	}
	e.Detail = text
	return e
}
