package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// The queue renders one message event per reported message (issue 10): it
// writes them here straight into the body of the notify-stream message, by
// hand, byte for byte what Marshal of the NotificationBatch gives
// (notify_encode_test.go proves it on random and hostile texts), into a
// buffer reused from one batch to the next.

// MessageBatch builds NotificationBatch messages of message events. The
// zero value is ready; it is not safe for concurrent use. Reset starts a
// new message; Body and ID are valid until the next Add or Reset.
type MessageBatch struct {
	buf     []byte
	n       int
	ids     hash.Hash // sha256 of every event id, each followed by ','
	scratch []byte
	obj     MessageObject
	spare   messageSpare
}

// Reset empties b, keeping its buffer.
func (b *MessageBatch) Reset() {
	b.buf = append(b.buf[:0], `{"batch":[`...)
	b.n = 0
	if b.ids == nil {
		b.ids = sha256.New()
	}
	b.ids.Reset()
}

// Len is the number of events added since Reset.
func (b *MessageBatch) Len() int { return b.n }

// Size is the body's length so far, in bytes.
func (b *MessageBatch) Size() int { return len(b.buf) + 2 }

// MaxEventSize bounds the bytes Add writes for m with hash: every byte of
// a string escapes to at most 6.
func MaxEventSize(hash string, m TrackedSMS) int {
	return 512 + 6*(2*len(hash)+len(m.Phone)+len(m.Text)+len(m.Device))
}

// Add appends the event MessageNotification(accountID, hash, m) gives, as
// PublishNotifications would write it (its time now when m has none), and
// reports false, adding nothing, for a status without an event.
func (b *MessageBatch) Add(accountID int64, hash string, m TrackedSMS) (bool, error) {
	typ, ok := messageEventTypes[m.Status]
	if !ok {
		return false, nil
	}
	at := messageEventTime(m)
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	if y := at.Year(); y < 0 || y > 9999 {
		return false, fmt.Errorf("message event %s: time %v out of range", hash, at)
	}
	if b.ids == nil {
		b.Reset()
	}
	b.scratch = appendMessageEventID(b.scratch[:0], hash, m)
	b.scratch = append(b.scratch, ',')
	b.ids.Write(b.scratch)

	buf := b.buf
	if b.n > 0 {
		buf = append(buf, ',')
	}
	// The id, as appendJSONString would write it: only the hash may need
	// escapes, and the ASCII around it cannot join one of its bytes into a
	// character.
	buf = append(buf, `{"id":"msg_`...)
	buf = appendJSONStringBody(buf, hash)
	buf = append(buf, b.scratch[len("msg_")+len(hash):len(b.scratch)-1]...) // "_sent", "_initiated_2"
	buf = append(buf, '"')
	buf = append(buf, `,"a":`...)
	buf = strconv.AppendInt(buf, accountID, 10)
	buf = append(buf, `,"type":`...)
	buf = appendJSONString(buf, typ)
	buf = append(buf, `,"at":"`...)
	buf = at.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","data":`...)
	b.obj.set(hash, &m, &b.spare)
	buf = b.obj.appendJSON(buf)
	b.buf = append(buf, '}')
	b.n++
	return true, nil
}

// Body is the NotificationBatch message of the events added.
func (b *MessageBatch) Body() []byte {
	if b.ids == nil {
		b.Reset()
	}
	return append(b.buf, "]}"...)
}

// ID is the batch id Notifier-style producers give the events added:
// "msgs_" and the first 16 bytes of the digest of their ids, in hex.
func (b *MessageBatch) ID() string {
	if b.ids == nil {
		b.Reset()
	}
	var sum [sha256.Size]byte
	return "msgs_" + hex.EncodeToString(b.ids.Sum(sum[:0])[:16])
}

// jsonPlain marks the bytes Marshal writes as they are inside a string:
// printable ASCII but '"', '\\' and the HTML characters '<', '>', '&'.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as Marshal (goccy/go-json, HTML escaping and
// UTF-8 normalisation on) encodes a string: '"' and '\\' escaped with a
// backslash, \n \r \t as such, other control characters and '<' '>' '&'
// as \u00XX, each byte of invalid UTF-8 as \ufffd, U+2028 and U+2029 as
// \u2028 and \u2029, everything else (DEL included) as is.
func appendJSONString(b []byte, s string) []byte {
	b = appendJSONStringBody(append(b, '"'), s)
	return append(b, '"')
}

// appendJSONStringBody is appendJSONString without the quotes.
func appendJSONStringBody(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// PublishMessageBatch stores b's events on the notify stream in one
// message and returns once the stream acknowledged it. Its Nats-Msg-Id is
// b.ID() + "/0", what PublishNotifications gives the same events under
// that batch id: publishing the same events again is stored once.
func PublishMessageBatch(ctx context.Context, js jetstream.JetStream, names Names, b *MessageBatch) error {
	if b.Len() == 0 {
		return nil
	}
	if _, err := js.Publish(ctx, names.NotifyBatchSubject(), b.Body(), jetstream.WithMsgID(b.ID()+"/0")); err != nil {
		return fmt.Errorf("publish notifications: %w", err)
	}
	return nil
}
