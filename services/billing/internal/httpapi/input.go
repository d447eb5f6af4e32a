package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apitosms/apitosms/libs/apperr"
)

// invalid is a 400 invalid_body error with sentence msg.
func invalid(msg string) *apperr.Error {
	return apperr.New(http.StatusBadRequest, "invalid_body", msg)
}

// object is a request body decoded one level deep.
type object map[string]json.RawMessage

// parseObject decodes body as a JSON object, or fails with apperr.ErrInvalidJSON.
func parseObject(body []byte) (object, error) {
	var o object
	if err := json.Unmarshal(body, &o); err != nil || o == nil {
		return nil, apperr.ErrInvalidJSON
	}
	return o, nil
}

// has reports whether key is present and not null.
func (o object) has(key string) bool {
	raw, ok := o[key]
	return ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// text returns the string at key, trimmed, which must be non-blank and at
// most max characters.
func (o object) text(key string, max int) (string, error) {
	if !o.has(key) {
		return "", invalid(key + " is required")
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD: check the
	// bytes as sent.
	if !utf8.Valid(o[key]) {
		return "", invalid(key + " must be valid UTF-8")
	}
	var s string
	if err := json.Unmarshal(o[key], &s); err != nil {
		return "", invalid(key + " must be a string")
	}
	// No control characters: NUL cannot be stored in PostgreSQL text, and
	// line breaks or escapes in a name or email only make trouble later.
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", invalid(key + " must not contain control characters")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalid(key + " must not be blank")
	}
	if utf8.RuneCountInString(s) > max {
		return "", invalid(key + " must be at most " + strconv.Itoa(max) + " characters")
	}
	return s, nil
}

// integer returns the whole number at key, which must be at least min; def
// when the key is absent or null and def is given.
func (o object) integer(key string, min int64, def *int64) (int64, error) {
	bad := invalid(key + " must be an integer of " + strconv.FormatInt(min, 10) + " or more")
	if !o.has(key) {
		if def != nil {
			return *def, nil
		}
		return 0, bad
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(o[key])), 10, 64)
	if err != nil || n < min {
		return 0, bad
	}
	return n, nil
}

// time returns the RFC 3339 time at key in UTC; zero when absent or null.
func (o object) time(key string) (time.Time, error) {
	if !o.has(key) {
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(o[key], &s); err != nil {
		return time.Time{}, invalid(key + " must be an RFC 3339 timestamp such as 2026-01-26T12:00:00+00:00")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid(key + " must be an RFC 3339 timestamp such as 2026-01-26T12:00:00+00:00")
	}
	return t.UTC(), nil
}
