package events

import (
	"bytes"
	"errors"
	"time"
)

// DecodeNotifications decodes one notify-stream message: a
// NotificationBatch, or a single Notification. It returns the batch's
// events, or the single one (a zero Notification when the message holds
// neither, for the caller to refuse).
//
// The result equals what Unmarshal gives, but each Data is a slice of b,
// not a copy: b must not change while the result is in use. The messages
// producers write (PublishNotification, PublishNotifications: known keys,
// plain ASCII ids, types and endpoints) take a fast path that checks every
// byte once (each Data is validated as JSON) and allocates only the list
// and the strings; anything else (escapes, unknown or repeated keys,
// non-ASCII, null data, invalid JSON) is decoded by Unmarshal, which also
// reports the error. The fan-out decodes every event this way: Unmarshal
// copied the message and then each Data (a fifth of its CPU, by profile,
// docs/benchmarks.md 2026-12-02).
func DecodeNotifications(b []byte) ([]Notification, error) {
	if list, ok := decodeFast(b); ok {
		return list, nil
	}
	var w struct {
		Notification
		Batch []Notification `json:"batch"`
	}
	if err := Unmarshal(b, &w); err != nil {
		return nil, err
	}
	if len(w.Batch) == 0 {
		return []Notification{w.Notification}, nil
	}
	return w.Batch, nil
}

// errSlow is never returned: it sends a message to Unmarshal.
var errSlow = errors.New("not on the fast path")

// decodeFast is DecodeNotifications' fast path; ok is false when the
// message must go through Unmarshal.
func decodeFast(b []byte) (list []Notification, ok bool) {
	d := decoder{b: b}
	d.ws()
	obj := d.i
	if !d.eat('{') {
		return nil, false
	}
	d.ws()
	if d.peekKey("batch") {
		d.i += len(`"batch"`)
		d.ws()
		if !d.eat(':') {
			return nil, false
		}
		d.ws()
		if !d.eat('[') {
			return nil, false
		}
		list = make([]Notification, 0, d.count())
		d.ws()
		if !d.eat(']') {
			for {
				var n Notification
				if err := d.notification(&n); err != nil {
					return nil, false
				}
				list = append(list, n)
				d.ws()
				if d.eat(']') {
					break
				}
				if !d.eat(',') {
					return nil, false
				}
				d.ws()
			}
		}
		d.ws()
		if !d.eat('}') || !d.end() || len(list) == 0 {
			return nil, false
		}
		return list, true
	}
	// A single Notification: its keys directly (no "batch").
	d.i = obj
	var n Notification
	if err := d.notification(&n); err != nil || !d.end() {
		return nil, false
	}
	return []Notification{n}, true
}

// decoder walks a message; every method leaves i after what it read.
type decoder struct {
	b []byte
	i int
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (d *decoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

// peekKey reports whether a quoted key k starts at i.
func (d *decoder) peekKey(k string) bool {
	rest := d.b[d.i:]
	return len(rest) >= len(k)+2 && rest[0] == '"' && string(rest[1:1+len(k)]) == k && rest[1+len(k)] == '"'
}

// count guesses the events of a batch (for the list's capacity).
func (d *decoder) count() int { return bytes.Count(d.b[d.i:], []byte(`{"id":`)) }

// Fields of a Notification the fast path fills, as bits of seen.
const (
	seenID = 1 << iota
	seenA
	seenType
	seenAt
	seenData
	seenEndpoint
)

// notification reads one Notification object.
func (d *decoder) notification(n *Notification) error {
	if !d.eat('{') {
		return errSlow
	}
	seen := 0
	d.ws()
	if d.eat('}') {
		return nil
	}
	for {
		key, err := d.plainBytes()
		if err != nil {
			return err
		}
		d.ws()
		if !d.eat(':') {
			return errSlow
		}
		d.ws()
		var bit int
		switch string(key) { // no copy: the compiler compares the bytes
		case "id":
			bit = seenID
			n.ID, err = d.plainString()
		case "a":
			bit = seenA
			n.AccountID, err = d.int64()
		case "type":
			bit = seenType
			n.Type, err = d.plainString()
		case "at":
			bit = seenAt
			err = d.time(&n.At)
		case "data":
			bit = seenData
			start := d.i
			if d.i < len(d.b) && d.b[d.i] == 'n' {
				return errSlow // null: as Unmarshal leaves it
			}
			if err = d.skipValue(0); err == nil {
				n.Data = d.b[start:d.i:d.i]
			}
		case "endpoint":
			bit = seenEndpoint
			n.Endpoint, err = d.plainString()
		default:
			return errSlow
		}
		if err != nil || seen&bit != 0 {
			return errSlow
		}
		seen |= bit
		d.ws()
		if d.eat('}') {
			return nil
		}
		if !d.eat(',') {
			return errSlow
		}
		d.ws()
	}
}

// plainString reads a string of printable ASCII without escapes (ids,
// types, endpoints, keys); any other string takes the slow path.
func (d *decoder) plainString() (string, error) {
	b, err := d.plainBytes()
	return string(b), err
}

// plainBytes is plainString without the copy: a slice of the message.
func (d *decoder) plainBytes() ([]byte, error) {
	if !d.eat('"') {
		return nil, errSlow
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			d.i++
			return d.b[start : d.i-1], nil
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return nil, errSlow
		}
		d.i++
	}
	return nil, errSlow
}

// int64 reads an integer without fraction or exponent that fits.
func (d *decoder) int64() (int64, error) {
	neg := d.eat('-')
	start := d.i
	var v uint64
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		if d.i-start >= 18 {
			return 0, errSlow // may not fit: Unmarshal decides
		}
		v = v*10 + uint64(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || (digits > 1 && d.b[start] == '0') {
		return 0, errSlow
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return 0, errSlow
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

// time reads a quoted time as time.Time.UnmarshalJSON does.
func (d *decoder) time(t *time.Time) error {
	start := d.i
	if _, err := d.plainBytes(); err != nil {
		return err
	}
	if err := t.UnmarshalJSON(d.b[start:d.i]); err != nil {
		return errSlow
	}
	return nil
}

// maxDepth bounds the nesting the fast path follows.
const maxDepth = 200

// skipValue moves past one JSON value, checking that it is valid JSON.
func (d *decoder) skipValue(depth int) error {
	if d.i >= len(d.b) || depth > maxDepth {
		return errSlow
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		d.ws()
		if d.eat('}') {
			return nil
		}
		for {
			d.ws()
			if d.i >= len(d.b) || d.b[d.i] != '"' {
				return errSlow
			}
			if err := d.skipString(); err != nil {
				return err
			}
			d.ws()
			if !d.eat(':') {
				return errSlow
			}
			d.ws()
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			d.ws()
			if d.eat('}') {
				return nil
			}
			if !d.eat(',') {
				return errSlow
			}
		}
	case c == '[':
		d.i++
		d.ws()
		if d.eat(']') {
			return nil
		}
		for {
			d.ws()
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			d.ws()
			if d.eat(']') {
				return nil
			}
			if !d.eat(',') {
				return errSlow
			}
		}
	case c == '"':
		return d.skipString()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.skipNumber()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
				d.i += len(lit)
				return nil
			}
		}
		return errSlow
	}
}

// skipString moves past a string, checking its escapes and that it holds
// no control characters (other bytes are kept as they are, as RawMessage
// keeps them).
func (d *decoder) skipString() error {
	d.i++ // the opening quote
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return nil
		case c < 0x20:
			return errSlow
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return errSlow
			}
			switch d.b[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				if d.i+6 > len(d.b) {
					return errSlow
				}
				for _, h := range d.b[d.i+2 : d.i+6] {
					if !isHex(h) {
						return errSlow
					}
				}
				d.i += 6
			default:
				return errSlow
			}
		default:
			d.i++
		}
	}
	return errSlow
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber moves past -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (d *decoder) skipNumber() error {
	d.eat('-')
	switch {
	case d.eat('0'):
	case d.i < len(d.b) && d.b[d.i] >= '1' && d.b[d.i] <= '9':
		d.digits()
	default:
		return errSlow
	}
	if d.eat('.') && d.digits() == 0 {
		return errSlow
	}
	if d.eat('e') || d.eat('E') {
		if !d.eat('+') {
			d.eat('-')
		}
		if d.digits() == 0 {
			return errSlow
		}
	}
	return nil
}

// digits moves past a run of digits and returns its length.
func (d *decoder) digits() int {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i - start
}
