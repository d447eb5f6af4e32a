// Package batch parses and validates the body of a queue request (contract
// §2): a JSON array of items or one bare item, each checked on its own so one
// bad item never spoils the rest.
package batch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
)

// Item errors, worded as in the contract.
const (
	ErrInvalidPhone    = "Invalid phone format"
	ErrMessageRequired = "Message is required"
	ErrMessageTooLong  = "Message too long (max 1000 characters)"
	ErrInvalidUTF8     = "Message must be valid UTF-8"
	ErrMessageNUL      = "Message must not contain NUL characters"
	ErrInvalidItem     = "Invalid item"
	ErrQuotaExceeded   = "SMS limit exceeded for this month"
)

// MaxMessageRunes is the longest message, in Unicode code points.
const MaxMessageRunes = 1000

// ErrEmptyBatch is the answer to an empty array.
var ErrEmptyBatch = apperr.New(http.StatusBadRequest, "empty_batch", "No messages given")

// TooLarge is the answer to more than max items.
func TooLarge(max int) *apperr.Error {
	return apperr.New(http.StatusRequestEntityTooLarge, "batch_too_large",
		fmt.Sprintf("Too many messages in one request (max %d)", max))
}

// Valid is an item that passed validation.
type Valid struct {
	Index int
	Phone string // normalized
	Text  string
	// §12, when given: Unix milliseconds (0: none) and the priority lane.
	SendAt     int64
	ValidUntil int64
	High       bool
}

// Result is a parsed request: valid items and per-item errors, both in index order.
type Result struct {
	Valid  []Valid
	Errors []events.IndexError
}

// item is one element as sent; pointers tell absent from empty, RawMessage
// keeps wrong types from failing the whole body.
type item struct {
	Phone      json.RawMessage `json:"phone"`
	Message    json.RawMessage `json:"message"`
	Text       json.RawMessage `json:"text"`
	SendAt     json.RawMessage `json:"sendAt"`
	TTL        json.RawMessage `json:"ttl"`
	ValidUntil json.RawMessage `json:"validUntil"`
	Priority   json.RawMessage `json:"priority"`
}

// Parse decodes body and validates every item. A body that is not a JSON
// array or object is ErrInvalidJSON; an empty array ErrEmptyBatch; more than
// maxItems TooLarge. The §12 fields are checked against the current time.
func Parse(body []byte, maxItems int) (Result, error) {
	return ParseAt(body, maxItems, time.Now())
}

// ParseAt is Parse with the §12 fields checked against now.
func ParseAt(body []byte, maxItems int, now time.Time) (Result, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || (trimmed[0] != '[' && trimmed[0] != '{') {
		return Result{}, apperr.ErrInvalidJSON
	}
	if typed, ok := parseTyped(trimmed); ok {
		if err := checkCount(len(typed), maxItems); err != nil {
			return Result{}, err
		}
		res := Result{Valid: make([]Valid, 0, len(typed))}
		for i, it := range typed {
			v, msg := checkTyped(it, now)
			res.add(i, v, msg)
		}
		return res, nil
	}
	var raws []json.RawMessage
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return Result{}, apperr.ErrInvalidJSON
		}
	} else {
		if !json.Valid(trimmed) {
			return Result{}, apperr.ErrInvalidJSON
		}
		raws = []json.RawMessage{trimmed}
	}
	if err := checkCount(len(raws), maxItems); err != nil {
		return Result{}, err
	}
	res := Result{Valid: make([]Valid, 0, len(raws))}
	for i, raw := range raws {
		v, msg := check(raw, now)
		res.add(i, v, msg)
	}
	return res, nil
}

func checkCount(n, maxItems int) error {
	if n == 0 {
		return ErrEmptyBatch
	}
	if n > maxItems {
		return TooLarge(maxItems)
	}
	return nil
}

// add records item i's outcome.
func (r *Result) add(i int, v Valid, msg string) {
	if msg != "" {
		r.Errors = append(r.Errors, events.IndexError{Index: i, Error: msg})
		return
	}
	v.Index = i
	r.Valid = append(r.Valid, v)
}

func check(raw json.RawMessage, now time.Time) (Valid, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return Valid{}, ErrInvalidItem
	}
	var it item
	if err := json.Unmarshal(raw, &it); err != nil {
		return Valid{}, ErrInvalidItem
	}
	phone, ok := asString(it.Phone)
	if !ok {
		return Valid{}, ErrInvalidPhone
	}
	phone, ok = NormalizePhone(phone)
	if !ok {
		return Valid{}, ErrInvalidPhone
	}
	// "message" wins when both are present.
	textRaw := it.Message
	if textRaw == nil {
		textRaw = it.Text
	}
	if !utf8.Valid(textRaw) {
		return Valid{}, ErrInvalidUTF8
	}
	text, ok := asString(textRaw)
	if !ok || strings.TrimSpace(text) == "" {
		return Valid{}, ErrMessageRequired
	}
	if utf8.RuneCountInString(text) > MaxMessageRunes {
		return Valid{}, ErrMessageTooLong
	}
	if strings.IndexByte(text, 0) >= 0 {
		return Valid{}, ErrMessageNUL
	}
	v := Valid{Phone: phone, Text: text}
	if msg := checkExtras(extras{it.SendAt, it.TTL, it.ValidUntil, it.Priority}, now, &v); msg != "" {
		return Valid{}, msg
	}
	return v, ""
}

// asString decodes a JSON string; absent, null or another type is not ok.
func asString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// NormalizePhone removes spaces, '-', '.', '(' and ')' and reports whether
// what remains is 6-20 digits, optionally after a leading '+'.
func NormalizePhone(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '-', '.', '(', ')':
		default:
			b.WriteByte(c)
		}
	}
	p := b.String()
	digits := strings.TrimPrefix(p, "+")
	if len(digits) < 6 || len(digits) > 20 {
		return "", false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", false
		}
	}
	return p, true
}
