package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// hostileString is a random mix of what a text may hold: printable ASCII,
// quotes, backslashes, HTML characters, control characters, DEL, multi-byte
// runes, U+2028, U+2029, U+FFFD, encoded surrogates, truncated and stray
// continuation bytes, and random bytes.
func hostileString(r *rand.Rand) string {
	pieces := []string{
		"a", "Z", "0", " ", "/", "\"", "\\", "<", ">", "&", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f",
		"ü", "П", "你", "🎉", "\u2028", "\u2029", "\u2027", "\u202a", "\ufffd", "\xed\xa0\x80", "\xe2\x80", "\xf0\x9f",
		"\x80", "\xbf", "\xc0\xaf", "\xff", "\xf4\x90\x80\x80", "\u00e9", "e\u0301",
	}
	var b strings.Builder
	for range r.IntN(40) {
		if r.IntN(8) == 0 {
			b.WriteByte(byte(r.IntN(256)))
		} else {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
	}
	return b.String()
}

// appendJSONString writes every string as Marshal does: each byte alone,
// each pair of bytes, and 20,000 random hostile strings.
func TestAppendJSONStringEqualsMarshal(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString([]byte("x"), s); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Fatalf("%q:\n got %s\nwant %s", s, got[1:], want)
		}
	}
	for c := range 256 {
		check(string([]byte{byte(c)}))
		for d := range 256 {
			check(string([]byte{byte(c), byte(d)}))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		check(hostileString(r))
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\<>&\n\x00\x7f", "ü\u2028\u2029\xff\xed\xa0\x80🎉"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

// randomTracked is a message with random hostile strings and random
// times, statuses and §12 fields; every status with an event has its time.
func randomTracked(r *rand.Rand, pos int64) TrackedSMS {
	tm := func() *time.Time {
		t := time.UnixMilli(r.Int64N(4102444800000)).In(time.FixedZone("X", 3600*(r.IntN(25)-12)))
		if r.IntN(2) == 0 {
			t = t.Add(time.Duration(r.IntN(1e6)))
		}
		return &t
	}
	m := TrackedSMS{
		Pos: pos, Phone: hostileString(r), Text: hostileString(r), Status: r.IntN(7),
		QueuedAt: *tm(), ClaimedAt: tm(), FinishedAt: tm(), Attempts: r.IntN(5) - 1,
	}
	if r.IntN(2) == 0 {
		m.Device = hostileString(r)
	}
	if r.IntN(3) == 0 {
		m.SendAt = r.Int64N(4102444800000)
	}
	if r.IntN(3) == 0 {
		m.ValidUntil = r.Int64N(4102444800000)
	}
	m.High = r.IntN(4) == 0
	if m.Status == StatusInitiated && r.IntN(3) == 0 {
		m.FinishedAt = nil
	}
	return m
}

// A MessageBatch's body is byte for byte what Marshal gives for the batch
// of the events MessageNotification makes (with At as
// PublishNotifications fills it), whatever the texts, and its id is the
// digest of their ids the queue's Notifier gave before; the body decodes
// to the same events, through the fast decoder too.
func TestMessageBatchEqualsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var b MessageBatch
	for round := range 300 {
		b.Reset()
		var ns []Notification
		sum := sha256.New()
		for i := range r.IntN(30) {
			m := randomTracked(r, int64(round*100+i))
			hash := fmt.Sprintf("h%dx%d", round, i)
			if r.IntN(10) == 0 {
				hash = hostileString(r)
			}
			account := r.Int64N(1<<40) + 1
			added, err := b.Add(account, hash, m)
			if err != nil {
				t.Fatal(err)
			}
			n, ok := MessageNotification(account, hash, m)
			if added != ok {
				t.Fatalf("status %d: Add %v, MessageNotification %v", m.Status, added, ok)
			}
			if !ok {
				continue
			}
			n.At = n.At.UTC()
			ns = append(ns, n)
			sum.Write([]byte(n.ID))
			sum.Write([]byte{','})
		}
		if b.Len() != len(ns) {
			t.Fatalf("Len %d, want %d", b.Len(), len(ns))
		}
		want, err := Marshal(NotificationBatch{Batch: append([]Notification{}, ns...)})
		if err != nil {
			t.Fatal(err)
		}
		got := b.Body()
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d:\n got %s\nwant %s", round, got, want)
		}
		if b.Size() != len(got) {
			t.Fatalf("Size %d, body %d bytes", b.Size(), len(got))
		}
		if id := "msgs_" + hex.EncodeToString(sum.Sum(nil)[:16]); b.ID() != id {
			t.Fatalf("ID %s, want %s", b.ID(), id)
		}
		if !utf8.Valid(got) {
			t.Fatalf("round %d: body is not valid UTF-8", round)
		}
		if len(ns) == 0 {
			continue // never published
		}
		back, err := DecodeNotifications(got)
		if err != nil || len(back) != len(ns) {
			t.Fatalf("round %d: decoded %d events of %d, err %v: %s", round, len(back), len(ns), err, got)
		}
	}
}

// An event whose message has no time for its status gets the time of Add.
func TestMessageBatchTimeOfAdd(t *testing.T) {
	var b MessageBatch
	before := time.Now()
	if ok, err := b.Add(1, "h", TrackedSMS{Status: StatusCancelled, QueuedAt: before}); !ok || err != nil {
		t.Fatalf("Add: %v %v", ok, err)
	}
	back, err := DecodeNotifications(b.Body())
	if err != nil || len(back) != 1 {
		t.Fatalf("decode: %v %v", back, err)
	}
	if at := back[0].At; at.Before(before.Truncate(time.Nanosecond)) || at.After(time.Now()) || at.Location() != time.UTC {
		t.Fatalf("at %v, want between %v and now, UTC", at, before)
	}
	if _, err := b.Add(1, "h", TrackedSMS{Status: StatusSent, FinishedAt: new(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))}); err == nil {
		t.Fatal("a year past 9999 added")
	}
}

// benchTracked is a reported message as the bench's phones report them.
func benchTracked(i int, text string) TrackedSMS {
	at := time.Date(2026, 12, 1, 17, 4, 5, 123456789, time.UTC)
	return TrackedSMS{
		Pos: int64(i + 1), Phone: "+4915112345678", Text: text, Status: StatusSent,
		QueuedAt: at, ClaimedAt: &at, FinishedAt: &at, Device: "phone-1", Attempts: 1,
	}
}

var benchTexts = map[string]string{
	"ascii":   "Your code is 123456. Do not share it.",
	"unicode": "Ihr Code lautet 123456. Schöne Grüße!",
}

// BenchmarkMessageEvents200 is the queue's former rendering of a reported
// batch's 200 events: one Notification each, then the batch encoded.
func BenchmarkMessageEvents200(b *testing.B) {
	for name, text := range benchTexts {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				ns := make([]Notification, 0, 200)
				for i := range 200 {
					n, _ := MessageNotification(42, fmt.Sprintf("k3J9x%05d", i), benchTracked(i, text))
					ns = append(ns, n)
				}
				if _, err := encodeNotificationBatch(ns); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*200)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkMessageBatch200 renders the same events into a reused
// MessageBatch.
func BenchmarkMessageBatch200(b *testing.B) {
	for name, text := range benchTexts {
		b.Run(name, func(b *testing.B) {
			var mb MessageBatch
			b.ReportAllocs()
			for range b.N {
				mb.Reset()
				for i := range 200 {
					if _, err := mb.Add(42, fmt.Sprintf("k3J9x%05d", i), benchTracked(i, text)); err != nil {
						b.Fatal(err)
					}
				}
				_ = mb.Body()
				_ = mb.ID()
			}
			b.ReportMetric(float64(b.N*200)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
