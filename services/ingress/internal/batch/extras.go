package batch

// The optional queue-item fields of contract §12: sendAt, ttl or
// validUntil, priority. Both parsing paths hand their raw JSON to
// checkExtras, so they agree by construction.

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Item errors of §12, worded as in the contract.
const (
	ErrInvalidSendAt     = "Invalid sendAt"
	ErrInvalidTTL        = "Invalid ttl"
	ErrInvalidValidUntil = "Invalid validUntil"
	ErrInvalidPriority   = "Invalid priority"
)

// Bounds of the §12 fields.
const (
	MaxSendAhead     = 30 * 24 * time.Hour // sendAt at most this far ahead
	MinTTL           = 60                  // seconds
	MaxTTL           = 2592000             // seconds (30 days)
	MaxValidUntilFar = 60 * 24 * time.Hour // validUntil at most this far ahead (sendAt's 30 days plus the longest ttl)
)

// extras are the raw §12 fields of one item (nil: absent).
type extras struct {
	SendAt     json.RawMessage
	TTL        json.RawMessage
	ValidUntil json.RawMessage
	Priority   json.RawMessage
}

// absent reports whether a field was not given (missing or null).
func absent(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// checkExtras validates the §12 fields against now and sets them on v
// (Unix milliseconds; 0 when not given), or returns the item's error.
// sendAt in the past is due at once; a lifetime must end after now and
// after sendAt, else the message could never be handed out.
func checkExtras(e extras, now time.Time, v *Valid) string {
	if !absent(e.SendAt) {
		t, ok := asTime(e.SendAt)
		if !ok || t.After(now.Add(MaxSendAhead)) {
			return ErrInvalidSendAt
		}
		v.SendAt = max(t.UnixMilli(), 1)
	}
	start := max(now.UnixMilli(), v.SendAt)
	if !absent(e.TTL) {
		if !absent(e.ValidUntil) {
			return ErrInvalidTTL // one lifetime, not two
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(e.TTL)), 10, 64)
		if err != nil || n < MinTTL || n > MaxTTL {
			return ErrInvalidTTL
		}
		v.ValidUntil = now.UnixMilli() + n*1000
		if v.ValidUntil <= start {
			return ErrInvalidTTL
		}
	}
	if !absent(e.ValidUntil) {
		t, ok := asTime(e.ValidUntil)
		if !ok || t.UnixMilli() <= start || t.After(now.Add(MaxValidUntilFar)) {
			return ErrInvalidValidUntil
		}
		v.ValidUntil = t.UnixMilli()
	}
	if !absent(e.Priority) {
		p, ok := asString(e.Priority)
		switch {
		case ok && p == "high":
			v.High = true
		case ok && p == "normal":
		default:
			return ErrInvalidPriority
		}
	}
	return ""
}

// asTime decodes an RFC 3339 JSON string.
func asTime(raw json.RawMessage) (time.Time, bool) {
	s, ok := asString(bytes.TrimSpace(raw))
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
