package apply

import (
	"bytes"
	"testing"

	"github.com/apitosms/apitosms/libs/events"
)

// take fills a message up to the byte bound (brackets and commas counted)
// and the report bound, in order, and always takes at least one event, even
// one over the bound alone.
func TestCoalescerTakeBounds(t *testing.T) {
	c := &coalescer{maxBytes: 100}
	tk := func(id int64, size, items int) *ticket {
		return &ticket{id: id, payload: bytes.Repeat([]byte{'x'}, size), items: items}
	}
	waiting := []*ticket{tk(1, 30, 1), tk(2, 30, 1), tk(3, 30, 1), // 2+31*3 = 95
		tk(4, 10, 1), tk(5, 200, 1), tk(6, 10, maxCombinedItems), tk(7, 10, 1)}
	var got [][]int64
	var sizes []int
	for len(waiting) > 0 {
		n := c.take(waiting)
		if n < 1 || n > len(waiting) {
			t.Fatalf("take of %d waiting: %d", len(waiting), n)
		}
		var ids []int64
		var payloads [][]byte
		for _, t := range waiting[:n] {
			ids = append(ids, t.id)
			payloads = append(payloads, t.payload)
		}
		waiting = waiting[n:]
		got = append(got, ids)
		sizes = append(sizes, events.ReportedMessageLen(payloads))
	}
	want := [][]int64{{1, 2, 3}, {4}, {5}, {6}, {7}}
	if len(got) != len(want) {
		t.Fatalf("messages %v, want %v", got, want)
	}
	for i := range want {
		if len(got[i]) != len(want[i]) || got[i][0] != want[i][0] || got[i][len(got[i])-1] != want[i][len(want[i])-1] {
			t.Fatalf("messages %v, want %v", got, want)
		}
		if sizes[i] > c.maxBytes && len(got[i]) > 1 {
			t.Errorf("message %v of %d bytes, over %d", got[i], sizes[i], c.maxBytes)
		}
	}
}

// A combined message's id is its one event's own (the relay's too), or
// one derived from all its events: the same for the same events, another
// for any other combination.
func TestCombinedMsgID(t *testing.T) {
	if got := combinedMsgID([]int64{7}); got != MsgID(7) {
		t.Errorf("one event: %q, want %q", got, MsgID(7))
	}
	a, b := combinedMsgID([]int64{7, 8, 9}), combinedMsgID([]int64{7, 8, 9})
	if a != b {
		t.Errorf("same events, ids %q and %q", a, b)
	}
	for _, other := range [][]int64{{7, 8}, {7, 8, 10}, {7, 9, 8}, {8, 9}} {
		if combinedMsgID(other) == a {
			t.Errorf("%v has the id of [7 8 9], %q", other, a)
		}
	}
}
