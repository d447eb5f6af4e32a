package queue_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// Claims hand out each account's messages oldest first across batches,
// respect (and clamp) the limit, mark them initiated, and never hand them
// out again.
func TestClaimFIFO(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := start(t, b)
		var f sms
		a1 := []events.AcceptedSMS{f.next(1), f.next(1), f.next(1), f.next(1), f.next(1)}
		a2 := []events.AcceptedSMS{f.next(2), f.next(2)}
		publish(t, q.br, b.Names, a1[0], a2[0], a1[1])
		publish(t, q.br, b.Names, a1[2])
		publish(t, q.br, b.Names, a2[1], a1[3], a1[4])

		if got := texts(claim(t, q.br, b.Names, 1, 2)); !equal(got, itemTexts(a1[:2]...)) {
			t.Fatalf("first claim = %v, want %v", got, itemTexts(a1[:2]...))
		}
		if got := texts(claim(t, q.br, b.Names, 1, 0)); !equal(got, itemTexts(a1[2])) {
			t.Fatalf("claim with limit 0 (clamped to 1) = %v, want %v", got, itemTexts(a1[2]))
		}
		msgs := claim(t, q.br, b.Names, 1, 500)
		if got := texts(msgs); !equal(got, itemTexts(a1[3:]...)) {
			t.Fatalf("third claim = %v, want %v", got, itemTexts(a1[3:]...))
		}
		if msgs[0].Phone != a1[3].Phone || msgs[0].Text != a1[3].Text {
			t.Fatalf("claimed %+v, want phone and text of %+v", msgs[0], a1[3])
		}
		if got := claim(t, q.br, b.Names, 1, 20); len(got) != 0 {
			t.Fatalf("drained account got %v, want none", texts(got))
		}
		for _, it := range a1 {
			if s := statusOf(t, q.db, it.Text); s != store.StatusInitiated {
				t.Fatalf("claimed message status %d, want 1", s)
			}
		}
		for _, it := range a2 {
			if s := statusOf(t, q.db, it.Text); s != store.StatusNew {
				t.Fatalf("other account's message status %d, want 0", s)
			}
		}
		if got := texts(claim(t, q.br, b.Names, 2, 20)); !equal(got, itemTexts(a2...)) {
			t.Fatalf("account 2 claim = %v, want %v", got, itemTexts(a2...))
		}
		if got := counter(t, q.reg, "apitosms_queue_claimed_messages_total"); got != 7 {
			t.Fatalf("claimed counter %v, want 7", got)
		}
		if got := counter(t, q.reg, "apitosms_queue_ingested_messages_total"); got != 7 {
			t.Fatalf("ingested counter %v, want 7", got)
		}
	})
}

// At most 200 messages are handed out at once.
func TestClaimLimitCapped(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := start(t, b)
		var f sms
		items := make([]events.AcceptedSMS, 250)
		for i := range items {
			items[i] = f.next(7)
		}
		publish(t, q.br, b.Names, items...)
		if got := claim(t, q.br, b.Names, 7, 1000); !equal(texts(got), itemTexts(items[:200]...)) {
			t.Fatalf("claim with limit 1000 returned %d messages, want the first 200", len(got))
		}
		if got := claim(t, q.br, b.Names, 7, 1000); !equal(texts(got), itemTexts(items[200:]...)) {
			t.Fatalf("second claim returned %d messages, want the last 50", len(got))
		}
	})
}

// A claim sees every message published before it, with no waiting in the
// caller.
func TestClaimReadYourWrites(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := start(t, b)
		var f sms
		for round := range 20 {
			items := []events.AcceptedSMS{f.next(3), f.next(3), f.next(3)}
			publish(t, q.br, b.Names, items...)
			if got := texts(claim(t, q.br, b.Names, 3, 10)); !equal(got, itemTexts(items...)) {
				t.Fatalf("round %d: claim right after publish = %v, want %v", round, got, itemTexts(items...))
			}
		}
	})
}

// Two replicas on one database and eight concurrent claimers, while messages
// keep arriving: every message is handed out exactly once, each batch in
// FIFO order.
func TestConcurrentClaimsTwoReplicas(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q1 := start(t, b)
		start(t, b)
		const total, perEvent, claimers = 2000, 100, 8
		pos := make(map[string]int64, total)
		var f sms
		events1 := make([][]events.AcceptedSMS, total/perEvent)
		for e := range events1 {
			for range perEvent {
				events1[e] = append(events1[e], f.next(5))
			}
		}
		var mu sync.Mutex
		pubDone := make(chan struct{})
		go func() {
			defer close(pubDone)
			for _, items := range events1 {
				seq := publish(t, q1.br, b.Names, items...)
				mu.Lock()
				for i, it := range items {
					pos[it.Text] = events.Position(seq, i)
				}
				mu.Unlock()
			}
		}()

		var claimed atomic.Int64
		got := make([][][]string, claimers)
		gotPos := make([][]events.ClaimedSMS, claimers)
		var wg sync.WaitGroup
		deadline := time.Now().Add(30 * time.Second)
		for c := range claimers {
			wg.Go(func() {
				for claimed.Load() < total && time.Now().Before(deadline) {
					msgs, err := claimErr(q1.br, b.Names, 5, 1+c*7)
					if err != nil {
						t.Errorf("claimer %d: %v", c, err)
						return
					}
					if len(msgs) > 0 {
						got[c] = append(got[c], texts(msgs))
						gotPos[c] = append(gotPos[c], msgs...)
						claimed.Add(int64(len(msgs)))
					}
				}
			})
		}
		wg.Wait()
		<-pubDone
		if t.Failed() {
			return
		}
		seen := make(map[string]int, total)
		for c, batches := range got {
			for _, batch := range batches {
				for i, h := range batch {
					seen[h]++
					if i > 0 && pos[batch[i-1]] >= pos[h] {
						t.Fatalf("claimer %d got a batch out of FIFO order: %v", c, batch)
					}
				}
			}
		}
		if len(seen) != total {
			t.Fatalf("%d distinct messages handed out, want %d", len(seen), total)
		}
		for h, n := range seen {
			if n != 1 {
				t.Fatalf("message %s handed out %d times", h, n)
			}
			if _, ok := pos[h]; !ok {
				t.Fatalf("unknown message %s handed out", h)
			}
		}
		// Each message carries its own position (its hash derives from it).
		for _, msgs := range gotPos {
			for _, m := range msgs {
				if m.Pos != pos[m.Text] {
					t.Fatalf("%s handed out with position %d, want %d", m.Text, m.Pos, pos[m.Text])
				}
			}
		}
		if rest := claim(t, q1.br, b.Names, 5, 200); len(rest) != 0 {
			t.Fatalf("%d messages left after draining", len(rest))
		}
	})
}

// A message reported final is never handed out; reports only move new (0)
// messages to a final status in the messages table (an initiated one is
// never handed out again anyway: its outcome goes to the outcomes table,
// without rewriting its row), only for the reporting account.
func TestReportedNotHandedOut(t *testing.T) {
	testkit.Each(t, reportedNotHandedOut)
}

func reportedNotHandedOut(t *testing.T, b testkit.Backend) {
	q := start(t, b)
	var f sms
	m0, m1, m2, m3, other := f.next(1), f.next(1), f.next(1), f.next(1), f.next(2)
	seq := publish(t, q.br, b.Names, m0, m1, m2, m3, other)
	rep := func(idx int, _ events.AcceptedSMS, status int) events.Reported {
		return events.Reported{Pos: events.Position(seq, idx), Status: status}
	}
	report(t, q.br, b.Names, 1,
		rep(0, m0, store.StatusSent),
		rep(4, other, store.StatusFailed)) // not account 1's
	testkit.Eventually(t, 10*time.Second, "report applied", func() bool {
		return statusOf(t, q.db, m0.Text) == store.StatusSent
	})
	if got := texts(claim(t, q.br, b.Names, 1, 1)); !equal(got, itemTexts(m1)) {
		t.Fatalf("claim = %v, want %v (the sent one skipped)", got, itemTexts(m1))
	}
	report(t, q.br, b.Names, 1,
		rep(1, m1, store.StatusFailed),
		rep(2, m2, store.StatusFailed),
		rep(0, m0, store.StatusFailed)) // already final: kept
	testkit.Eventually(t, 10*time.Second, "second report applied", func() bool {
		return statusOf(t, q.db, m2.Text) == store.StatusFailed
	})
	if s := statusOf(t, q.db, m0.Text); s != store.StatusSent {
		t.Fatalf("final status changed to %d, want it kept at 2", s)
	}
	if s := statusOf(t, q.db, m1.Text); s != store.StatusInitiated {
		t.Fatalf("initiated message changed to %d, want it left at 1", s)
	}
	if got := texts(claim(t, q.br, b.Names, 1, 10)); !equal(got, itemTexts(m3)) {
		t.Fatalf("claim = %v, want only %v", got, itemTexts(m3))
	}
	if got := texts(claim(t, q.br, b.Names, 2, 10)); !equal(got, itemTexts(other)) {
		t.Fatalf("other account's claim = %v, want its message untouched", got)
	}
}

// After a restart nothing is lost or handed out twice, and FIFO holds across
// messages ingested before and after.
func TestRestart(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := start(t, b)
		var f sms
		before := []events.AcceptedSMS{f.next(1), f.next(1), f.next(1)}
		publish(t, q.br, b.Names, before...)
		if got := texts(claim(t, q.br, b.Names, 1, 1)); !equal(got, itemTexts(before[0])) {
			t.Fatalf("claim before restart = %v", got)
		}
		q.stop()
		after := []events.AcceptedSMS{f.next(1), f.next(1)}
		publish(t, q.br, b.Names, after...)

		q2 := start(t, b)
		want := itemTexts(append(slices.Clone(before[1:]), after...)...)
		if got := texts(claim(t, q2.br, b.Names, 1, 10)); !equal(got, want) {
			t.Fatalf("claim after restart = %v, want %v", got, want)
		}
		if got := claim(t, q2.br, b.Names, 1, 10); len(got) != 0 {
			t.Fatalf("second claim after restart = %v, want none", texts(got))
		}
	})
}

// With ingestion stuck behind a bad event, claims still hand out the stored
// backlog at once (it is older than anything not stored, so the answer is the
// FIFO one); a claim that comes up short waits for ingestion, and answers
// 503 only when it has nothing to hand out.
func TestClaimServesStoredBacklogWhileIngestionLags(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := start(t, b, func(c *queue.Config) { c.ClaimWaitTimeout = 300 * time.Millisecond })
		var f sms
		stored := make([]events.AcceptedSMS, 250)
		for i := range stored {
			stored[i] = f.next(1)
		}
		publish(t, q.br, b.Names, stored[:125]...)
		publish(t, q.br, b.Names, stored[125:]...)
		// A claim of 1 waits for ingestion, so the backlog is stored after it.
		first := claim(t, q.br, b.Names, 1, 1)
		if !equal(texts(first), itemTexts(stored[0])) {
			t.Fatalf("first claim = %v", texts(first))
		}
		// An event the consumer cannot decode blocks the ack floor (it is
		// retried with back-off before it is dead-lettered), and more arrive.
		if _, err := q.br.JS.Publish(context.Background(), b.Names.AcceptedSubject(), []byte("not json")); err != nil {
			t.Fatal(err)
		}
		late := f.next(1)
		publish(t, q.br, b.Names, late)

		start := time.Now()
		got := claim(t, q.br, b.Names, 1, 200)
		if !equal(texts(got), itemTexts(stored[1:201]...)) {
			t.Fatalf("claim while ingestion lags: %d messages, want the 200 oldest stored", len(got))
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Fatalf("a full claim from the stored backlog waited %v", d)
		}
		// 49 stored remain: the claim comes up short, waits, and (ingestion
		// still stuck) answers with what it already marked handed out.
		if got := claim(t, q.br, b.Names, 1, 200); !equal(texts(got), itemTexts(stored[201:]...)) {
			t.Fatalf("short claim = %d messages, want the last 49 stored", len(got))
		}
		// Nothing stored is left and read-your-writes cannot be met: 503.
		if _, err := claimErr(q.br, b.Names, 1, 200); !errors.Is(err, apperr.ErrUnavailable) {
			t.Fatalf("claim with nothing stored and ingestion stuck: %v, want unavailable", err)
		}
	})
}
