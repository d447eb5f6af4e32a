package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Codes the server answers with (docs/api.md, "Error codes").
const (
	CodeInvalidJSON           = "invalid_json"
	CodeEmptyBatch            = "empty_batch"
	CodeInvalidLimit          = "invalid_limit"
	CodeInvalidBody           = "invalid_body"
	CodeInvalidIdempotencyKey = "invalid_idempotency_key"
	CodeInvalidToken          = "invalid_token"
	CodeSubscriptionRequired  = "subscription_required"
	CodeLimitExceeded         = "limit_exceeded"
	CodeNoActiveVersion       = "no_active_version"
	CodeIdempotencyInProgress = "idempotency_in_progress"
	CodeBatchTooLarge         = "batch_too_large"
	CodeBodyTooLarge          = "body_too_large"
	CodeRateLimited           = "rate_limited"
	CodeInternal              = "internal"
	CodeUnavailable           = "unavailable"
)

// Error is an error answer of the server.
type Error struct {
	StatusCode int    // HTTP status
	Code       string // the contract's machine word ("" when the answer had none, e.g. from a proxy)
	Message    string // the server's sentence
	// RetryAfter is how long the server asked to wait (429, 503), 0 if it
	// did not say.
	RetryAfter time.Duration
	// Limit and Used are the month's quota and usage (CodeLimitExceeded).
	Limit, Used int64
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("apitosms: %d: %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("apitosms: %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// Is matches errors by code: errors.Is(err, client.ErrRateLimited).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrInvalidToken         = &Error{Code: CodeInvalidToken}
	ErrSubscriptionRequired = &Error{Code: CodeSubscriptionRequired}
	ErrLimitExceeded        = &Error{Code: CodeLimitExceeded}
	ErrRateLimited          = &Error{Code: CodeRateLimited}
	ErrUnavailable          = &Error{Code: CodeUnavailable}
	ErrNoActiveVersion      = &Error{Code: CodeNoActiveVersion}
)

// parseError builds the *Error of a non-success answer.
func parseError(resp *http.Response, body []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode}
	var b struct {
		Error      string `json:"error"`
		Code       string `json:"code"`
		RetryAfter int64  `json:"retryAfter"`
		Limit      int64  `json:"limit"`
		Used       int64  `json:"used"`
	}
	if json.Unmarshal(body, &b) == nil && (b.Error != "" || b.Code != "") {
		e.Message, e.Code, e.Limit, e.Used = b.Error, b.Code, b.Limit, b.Used
		if b.RetryAfter > 0 {
			e.RetryAfter = time.Duration(b.RetryAfter) * time.Second
		}
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = d
	}
	return e
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
