package batch

import (
	"bytes"
	stdjson "encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// typedItem is an item whose fields all have the expected JSON types.
type typedItem struct {
	Phone   *string `json:"phone"`
	Message *string `json:"message"`
	Text    *string `json:"text"`
	*RawExtras
}

// RawExtras are the §12 fields, kept raw (checkExtras judges them for both
// paths). Embedded by pointer, they cost a Part 1 item nothing: the decoder
// allocates them only when an item has one of them.
type RawExtras struct {
	SendAt     stdjson.RawMessage `json:"sendAt"`
	TTL        stdjson.RawMessage `json:"ttl"`
	ValidUntil stdjson.RawMessage `json:"validUntil"`
	Priority   stdjson.RawMessage `json:"priority"`
}

// parseTyped is the fast path for the common case: a well-typed body (an
// array of objects, or one object, with string fields) whose bytes are all
// valid UTF-8, decoded in one pass. It reports false when the body needs the
// item-by-item path, which gives each odd item its own error.
func parseTyped(body []byte) ([]typedItem, bool) {
	if !utf8.Valid(body) {
		return nil, false
	}
	if body[0] == '{' {
		var one typedItem
		if json.Unmarshal(body, &one) != nil {
			return nil, false
		}
		return []typedItem{one}, true
	}
	var items []typedItem
	if json.Unmarshal(body, &items) != nil {
		return nil, false
	}
	// null elements decode to zero items; the slow path calls them invalid.
	if bytes.Contains(body, []byte("null")) {
		return nil, false
	}
	return items, true
}

func checkTyped(it typedItem, now time.Time) (Valid, string) {
	if it.Phone == nil {
		return Valid{}, ErrInvalidPhone
	}
	phone, ok := NormalizePhone(*it.Phone)
	if !ok {
		return Valid{}, ErrInvalidPhone
	}
	text := it.Message
	if text == nil {
		text = it.Text
	}
	if text == nil || strings.TrimSpace(*text) == "" {
		return Valid{}, ErrMessageRequired
	}
	if utf8.RuneCountInString(*text) > MaxMessageRunes {
		return Valid{}, ErrMessageTooLong
	}
	if strings.IndexByte(*text, 0) >= 0 {
		return Valid{}, ErrMessageNUL
	}
	v := Valid{Phone: phone, Text: *text}
	if x := it.RawExtras; x != nil {
		if msg := checkExtras(extras{x.SendAt, x.TTL, x.ValidUntil, x.Priority}, now, &v); msg != "" {
			return Valid{}, msg
		}
	}
	return v, ""
}
