package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// sampleNotifications are events as producers make them: message events
// whose texts need escapes (quotes, backslashes, control characters, HTML
// characters, U+2028, invalid UTF-8) or are plain unicode, a phone event, an
// event with empty data, one for one endpoint, and ids that need escapes.
func sampleNotifications(t testing.TB) []Notification {
	t.Helper()
	at := time.Date(2026, 12, 1, 17, 4, 5, 123456789, time.UTC)
	round := time.Date(2026, 12, 1, 17, 4, 5, 0, time.UTC)
	texts := []string{
		"hello", "", "quote \" backslash \\ slash /", "line\nbreak\ttab\r\x00\x1f",
		"<b>&amp;</b>", "ünïcødé Привет 你好 🎉", "sep\u2028\u2029", "bad \xff utf8",
	}
	var ns []Notification
	for i, text := range texts {
		m := TrackedSMS{
			Pos: int64(i + 1), Phone: "+4915112345678", Text: text, Status: StatusSent,
			QueuedAt: round, FinishedAt: &at, Device: "dev-é", Attempts: 1,
		}
		n, ok := MessageNotification(42, fmt.Sprintf("h%d", i), m)
		if !ok {
			t.Fatal("no notification")
		}
		ns = append(ns, n)
	}
	phone, err := Marshal(PhoneEvent{Device: "pixel \"7\""})
	if err != nil {
		t.Fatal(err)
	}
	ns = append(ns,
		Notification{ID: "phone.offline.7.ab.1", AccountID: 7, Type: TypePhoneOffline, At: round, Data: phone},
		Notification{ID: "evt_empty", AccountID: 1, Type: TypeWebhookTest, At: at, Data: json.RawMessage("{}"), Endpoint: "wh_1"},
		Notification{ID: "id \"<&>\" ü \u2028", AccountID: -3, Type: TypeQuotaWarning, At: time.Time{}.UTC(), Data: json.RawMessage(`{"used":1}`)},
		Notification{ID: "evt_nil", AccountID: 1 << 62, Type: TypeMessageFailed, At: at.Add(time.Millisecond)},
	)
	return ns
}

// The batch encoder writes each event's already encoded data as is, and
// its bytes equal what encoding the whole batch with Marshal gave (the
// encoding the consumers read).
func TestEncodeNotificationBatchEqualsMarshal(t *testing.T) {
	ns := sampleNotifications(t)
	cases := map[string][]Notification{"all": ns, "one": ns[:1], "empty": {}}
	for i := range ns {
		cases[fmt.Sprintf("#%d", i)] = ns[i : i+1]
	}
	for name, list := range cases {
		want, err := Marshal(NotificationBatch{Batch: list})
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeNotificationBatch(list)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		var back NotificationBatch
		if err := Unmarshal(got, &back); err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if len(back.Batch) != len(list) {
			t.Fatalf("%s: decoded %d events, want %d", name, len(back.Batch), len(list))
		}
		for i := range list {
			if back.Batch[i].ID != list[i].ID && json.Valid([]byte(`"`+list[i].ID+`"`)) {
				t.Errorf("%s: id %q, want %q", name, back.Batch[i].ID, list[i].ID)
			}
		}
	}
}

// BenchmarkEncodeNotificationBatch1000 is the encoding of one full
// NotificationBatch message: 1000 message.sent events as the queue makes
// them.
func BenchmarkEncodeNotificationBatch1000(b *testing.B) {
	at := time.Date(2026, 12, 1, 17, 4, 5, 123456789, time.UTC)
	ns := make([]Notification, 0, MaxNotificationsPerMessage)
	for i := range MaxNotificationsPerMessage {
		m := TrackedSMS{
			Pos: int64(i + 1), Phone: "+4915112345678", Text: "Your code is 123456. Do not share it.", Status: StatusSent,
			QueuedAt: at, ClaimedAt: &at, FinishedAt: &at, Device: "phone-1", Attempts: 1,
		}
		n, ok := MessageNotification(42, fmt.Sprintf("k3J9x%05d", i), m)
		if !ok {
			b.Fatal("no notification")
		}
		ns = append(ns, n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := encodeNotificationBatch(ns); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(ns))/b.Elapsed().Seconds(), "events/s")
}

// A message event's data is byte for byte what Marshal gives for the
// message object, whatever its text, times and §12 fields.
func TestMessageObjectJSONEqualsMarshal(t *testing.T) {
	at := time.Date(2026, 12, 1, 17, 4, 5, 123456789, time.UTC)
	local := time.Date(2026, 12, 1, 18, 4, 5, 0, time.FixedZone("CET", 3600))
	texts := []string{
		"hello", "", "quote \" backslash \\ slash /", "line\nbreak\ttab\r\x00\x1f\x7f",
		"<b>&amp;</b>", "ünïcødé Привет 你好 🎉", "sep\u2028\u2029", "bad \xff utf8",
	}
	var cases []TrackedSMS
	for i, text := range texts {
		cases = append(cases, TrackedSMS{Pos: int64(i), Phone: "+49 151 <1>", Text: text, Status: StatusSent, QueuedAt: at, ClaimedAt: &local, FinishedAt: &at, Device: "dev \"é\"", Attempts: 3})
	}
	cases = append(cases,
		TrackedSMS{Status: StatusInitiated, QueuedAt: local, ClaimedAt: &at, Attempts: 1},
		TrackedSMS{Status: StatusFailed, SendAt: 1764608645123, ValidUntil: 1764612245000, High: true},
		TrackedSMS{Status: StatusExpired, ValidUntil: 1764612245000, Device: "d"},
		TrackedSMS{Status: StatusCancelled, SendAt: 1, Attempts: -1},
		TrackedSMS{Status: 99},
	)
	for i, m := range cases {
		o := NewMessageObject(fmt.Sprintf("hash%d", i), m)
		want, err := Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		got := o.appendJSON(nil)
		if !bytes.Equal(got, want) {
			t.Errorf("#%d:\n got %s\nwant %s", i, got, want)
		}
		if n, ok := MessageNotification(1, "h", m); ok {
			if want, _ := Marshal(NewMessageObject("h", m)); !bytes.Equal(n.Data, want) {
				t.Errorf("#%d: notification data %s, want %s", i, n.Data, want)
			}
		}
	}
}

// BenchmarkMessageNotification1000 renders 1000 message.sent events as the
// queue does for a reported batch.
func BenchmarkMessageNotification1000(b *testing.B) {
	at := time.Date(2026, 12, 1, 17, 4, 5, 123456789, time.UTC)
	m := TrackedSMS{
		Pos: 1, Phone: "+4915112345678", Text: "Your code is 123456. Do not share it.", Status: StatusSent,
		QueuedAt: at, ClaimedAt: &at, FinishedAt: &at, Device: "phone-1", Attempts: 1,
	}
	b.ReportAllocs()
	for range b.N {
		for i := range 1000 {
			m.Pos = int64(i)
			if _, ok := MessageNotification(42, "k3J9x00001", m); !ok {
				b.Fatal("no notification")
			}
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
