package phonesim

import (
	"encoding/json"
	"fmt"
)

// indexError is one entry of a response's "errors".
type indexError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// parseMessages decodes a get_messages body, appending to dst[:0]. The
// common shape (an array of flat objects of plain strings) is scanned
// without reflection; anything else (escapes, other value types) goes
// through encoding/json, so every valid body decodes.
func parseMessages(b []byte, dst []Message) ([]Message, error) {
	if out, ok := scanMessages(b, dst[:0]); ok {
		return out, nil
	}
	var ms []Message
	if err := json.Unmarshal(b, &ms); err != nil {
		return dst[:0], fmt.Errorf("get_messages body: %w", err)
	}
	return append(dst[:0], ms...), nil
}

// scanMessages is the fast path of parseMessages; ok is false when the body
// is not of the simple shape.
func scanMessages(b []byte, dst []Message) (out []Message, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return dst, skipWS(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '{' {
			return nil, false
		}
		var m Message
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			i++
		} else {
			for {
				key, j, ok := scanString(b, i)
				if !ok {
					return nil, false
				}
				j = skipWS(b, j)
				if j >= len(b) || b[j] != ':' {
					return nil, false
				}
				val, j, ok := scanString(b, skipWS(b, j+1))
				if !ok {
					return nil, false
				}
				switch string(key) {
				case "phone":
					m.Phone = string(val)
				case "text":
					m.Text = string(val)
				case "hash":
					m.Hash = string(val)
				}
				j = skipWS(b, j)
				if j >= len(b) {
					return nil, false
				}
				if b[j] == ',' {
					i = skipWS(b, j+1)
					continue
				}
				if b[j] != '}' {
					return nil, false
				}
				i = j + 1
				break
			}
		}
		dst = append(dst, m)
		i = skipWS(b, i)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return dst, skipWS(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

// scanString reads a JSON string without escapes starting at b[i]; it
// returns its contents and the index after the closing quote.
func scanString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for k := i + 1; k < len(b); k++ {
		switch c := b[k]; {
		case c == '"':
			return b[i+1 : k], k + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// jsonString appends s as a JSON string.
func jsonString(dst []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			js, err := json.Marshal(s)
			return append(dst, js...), err
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}
