// Package apperr is the one error type of the project: it carries the
// contract's HTTP status, stable code and human sentence, travels across NATS
// request/reply unchanged, and is turned into the contract's JSON shape in one
// place (Handler).
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error the client is meant to see.
type Error struct {
	Status  int               `json:"status"`
	Code    string            `json:"code,omitempty"`
	Message string            `json:"error"`
	Extra   map[string]any    `json:"extra,omitempty"`   // added top-level body fields (limit, used, retryAfter)
	Headers map[string]string `json:"headers,omitempty"` // added response headers (Retry-After)
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("%d: %s", e.Status, e.Message)
}

// Is makes errors.Is match by status and code, so a shared error such as
// ErrInvalidToken matches the copy that arrives through request/reply.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && t.Code == e.Code
}

// New returns an error with the given status, code and sentence.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// With returns a copy of e with one more body field.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Extra = make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		c.Extra[k] = v
	}
	c.Extra[key] = value
	return &c
}

// WithHeader returns a copy of e with one more response header.
func (e *Error) WithHeader(key, value string) *Error {
	c := *e
	c.Headers = make(map[string]string, len(e.Headers)+1)
	for k, v := range e.Headers {
		c.Headers[k] = v
	}
	c.Headers[key] = value
	return &c
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Body is the JSON object sent to the client.
func (e *Error) Body() map[string]any {
	body := make(map[string]any, 2+len(e.Extra))
	for k, v := range e.Extra {
		body[k] = v
	}
	body["error"] = e.Message
	if e.Code != "" {
		body["code"] = e.Code
	}
	return body
}

// The contract's errors shared by more than one service.
var (
	ErrInvalidToken = New(http.StatusUnauthorized, "invalid_token", "Invalid API token")
	ErrUnauthorized = New(http.StatusUnauthorized, "unauthorized", "Missing or invalid admin token")
	ErrInternal     = New(http.StatusInternalServerError, "internal", "Internal server error")
	// ErrUnavailable answers whenever a dependency (broker, database, another
	// service) does not answer in time or is not there: the client should
	// retry after Retry-After seconds. Unavailable says which errors mean it.
	ErrUnavailable = New(http.StatusServiceUnavailable, "unavailable", "Service temporarily unavailable").
			WithHeader("Retry-After", RetryAfterSeconds)
	ErrNotFound         = New(http.StatusNotFound, "not_found", "Not found")
	ErrInvalidJSON      = New(http.StatusBadRequest, "invalid_json", "Invalid JSON body")
	ErrBodyTooLarge     = New(http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large")
	ErrMethodNotAllowed = New(http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed")
)
