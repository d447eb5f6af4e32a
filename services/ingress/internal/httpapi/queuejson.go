package httpapi

import (
	"encoding/json"
	"strconv"

	"github.com/apitosms/apitosms/libs/events"
)

// appendQueueResponse is json.Marshal(r) without reflection, byte for byte
// (contract §2's answer; once a request, 1% of the server's CPU at one
// message per request through encoding/json). Strings are written as they
// are when encoding/json would write them so (printable ASCII without '"',
// '\\' and its HTML escapes '<', '>', '&'); a response with any other string
// goes through encoding/json.
func appendQueueResponse(b []byte, r *queueResponse) ([]byte, error) {
	for i := range r.Items {
		if !plainJSON(r.Items[i].Hash) || !plainJSON(r.Items[i].Phone) {
			return json.Marshal(r)
		}
	}
	for i := range r.Errors {
		if !plainJSON(r.Errors[i].Error) {
			return json.Marshal(r)
		}
	}
	b = append(b, `{"ok":`...)
	b = strconv.AppendBool(b, r.OK)
	b = append(b, `,"queued":`...)
	b = strconv.AppendInt(b, int64(r.Queued), 10)
	b = append(b, `,"failed":`...)
	b = strconv.AppendInt(b, int64(r.Failed), 10)
	b = append(b, `,"items":`...)
	b = appendList(b, r.Items, func(b []byte, it *queueItem) []byte {
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(it.Index), 10)
		b = append(b, `,"hash":"`...)
		b = append(b, it.Hash...)
		b = append(b, `","phone":"`...)
		b = append(b, it.Phone...)
		return append(b, `"}`...)
	})
	b = append(b, `,"errors":`...)
	b = appendList(b, r.Errors, func(b []byte, e *events.IndexError) []byte {
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(e.Index), 10)
		b = append(b, `,"error":"`...)
		b = append(b, e.Error...)
		return append(b, `"}`...)
	})
	return append(b, '}'), nil
}

// appendList appends xs as a JSON array (null when nil, as encoding/json).
func appendList[T any](b []byte, xs []T, one func([]byte, *T) []byte) []byte {
	if xs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = one(b, &xs[i])
	}
	return append(b, ']')
}

// plainJSON reports whether encoding/json writes s between its quotes
// unchanged.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
