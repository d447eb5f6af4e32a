package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// positions lists the positions of claimed messages.
func positions(c []store.Claimed) []int64 {
	out := make([]int64, len(c))
	for i, m := range c {
		out[i] = m.Pos
	}
	return out
}

func span(from, to int64) []int64 {
	var out []int64
	for p := from; p <= to; p++ {
		out = append(out, p)
	}
	return out
}

// confirmed claims limit messages of account as a claim to be confirmed
// before expires.
func confirmed(t *testing.T, st *store.Store, account int64, limit int, expires time.Time) (int64, []int64) {
	t.Helper()
	id := store.NewClaimID()
	got, err := st.Claim(context.Background(), account, limit, store.NoBound, time.Now(), store.Confirm{ID: id, Expires: expires})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return id, positions(got)
}

func claimAll(t *testing.T, st *store.Store, account int64) []int64 {
	t.Helper()
	got, err := st.Claim(context.Background(), account, 1000, store.NoBound, time.Now(), store.Confirm{})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return positions(got)
}

// A claim never acknowledged is swept after its deadline, and not before:
// its messages are new again and handed out at their original FIFO place,
// once. A claim made without confirmation, and one acknowledged, are final.
func TestUnconfirmedClaimIsRequeued(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, rows(1, 1, 7)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		lost, got := confirmed(t, st, 1, 4, deadline) // the ingress dies: no ack
		if !slices.Equal(got, span(1, 4)) {
			t.Fatalf("first claim got %v", got)
		}
		if got := claimAll(t, st, 1); !slices.Equal(got, span(5, 7)) { // final at once
			t.Fatalf("unconfirmed claim got %v", got)
		}
		if _, err := in.Insert(ctx, rows(1, 8, 5)); err != nil { // a backlog behind the lost claim
			t.Fatal(err)
		}
		acked, got := confirmed(t, st, 1, 2, deadline)
		if !slices.Equal(got, span(8, 9)) {
			t.Fatalf("acknowledged claim got %v", got)
		}
		if n, err := st.Ack(ctx, []int64{acked, acked}); err != nil || n != 1 {
			t.Fatalf("ack = %d, %v; want 1 claim closed", n, err)
		}
		if n, err := st.Ack(ctx, []int64{acked, lost + 1}); err != nil || n != 0 {
			t.Fatalf("second ack = %d, %v; want nothing (idempotent)", n, err)
		}

		if sw, err := st.Sweep(ctx, deadline.Add(-time.Millisecond), 100); err != nil || (sw.Claims != 0 || sw.Requeued != 0 || len(sw.Expired) != 0) {
			t.Fatalf("sweep before the deadline = %+v, %v; want nothing", sw, err)
		}
		sw, err := st.Sweep(ctx, deadline, 100)
		if err != nil || (sw.Claims != 1 || sw.Requeued != 4 || len(sw.Expired) != 0) {
			t.Fatalf("sweep at the deadline = %+v, %v; want 1 claim, 4 messages", sw, err)
		}
		if sw, err := st.Sweep(ctx, deadline.Add(time.Hour), 100); err != nil || (sw.Claims != 0 || sw.Requeued != 0 || len(sw.Expired) != 0) {
			t.Fatalf("second sweep = %+v, %v; want nothing", sw, err)
		}
		// FIFO: the requeued messages come before the newer backlog.
		want := append(span(1, 4), span(10, 12)...)
		if got := claimAll(t, st, 1); !slices.Equal(got, want) {
			t.Fatalf("after the sweep got %v, want %v", got, want)
		}
		if got := claimAll(t, st, 1); len(got) != 0 {
			t.Fatalf("then got %v, want nothing", got)
		}
	})
}

// A message reported final while its claim is still unconfirmed is not
// handed out again by the sweep; a report for a message whose claim was
// confirmed only records its outcome (the message row is not rewritten).
func TestReportedBeforeDeadlineIsNotRequeued(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, rows(1, 1, 8)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		_, got := confirmed(t, st, 1, 5, deadline)
		if !slices.Equal(got, span(1, 5)) {
			t.Fatalf("claim got %v", got)
		}
		acked, _ := confirmed(t, st, 1, 1, deadline)
		if _, err := st.Ack(ctx, []int64{acked}); err != nil {
			t.Fatal(err)
		}
		changed, missing, err := st.ApplyReports(ctx, []store.Report{
			{AccountID: 1, Pos: 2, Status: store.StatusSent},
			{AccountID: 1, Pos: 4, Status: store.StatusFailed},
			{AccountID: 2, Pos: 5, Status: store.StatusSent},  // another account's: ignored
			{AccountID: 1, Pos: 6, Status: store.StatusSent},  // confirmed claim: outcome only
			{AccountID: 1, Pos: 99, Status: store.StatusSent}, // not stored
		})
		if err != nil || changed != 3 || missing != 1 {
			t.Fatalf("reports: changed %d, missing %d, %v; want 3, 1", changed, missing, err)
		}
		sw, err := st.Sweep(ctx, deadline, 100)
		if err != nil || (sw.Claims != 1 || sw.Requeued != 3 || len(sw.Expired) != 0) {
			t.Fatalf("sweep = %+v, %v; want 1 claim, 3 messages", sw, err)
		}
		if got, want := claimAll(t, st, 1), []int64{1, 3, 5, 7, 8}; !slices.Equal(got, want) {
			t.Fatalf("after the sweep got %v, want %v", got, want)
		}
	})
}

// Two replicas sweep 60 expired claims at once while others are still open:
// each expired claim is swept exactly once, every one of its messages goes
// back once, and the open claims keep theirs.
func TestConcurrentSweepsRequeueOnce(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		other := store.New(b.DB(t, store.Service)) // a second replica's pool
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		const claims, per = 60, 7
		if _, err := in.Insert(ctx, rows(1, 1, claims*per+per)); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for i := range claims {
			// Deadlines spread over the past minute, newest claims first
			// to expire, so sweep order and FIFO order differ.
			confirmed(t, st, 1, per, now.Add(-time.Duration(i)*time.Second))
		}
		open, openPos := confirmed(t, st, 1, per, now.Add(time.Hour))
		_ = open

		var mu sync.Mutex
		var total store.Swept
		var wg sync.WaitGroup
		for _, s := range []*store.Store{st, other, st, other} {
			wg.Go(func() {
				for {
					sw, err := s.Sweep(ctx, now, 7) // small batches: many rounds
					if err != nil {
						t.Errorf("sweep: %v", err)
						return
					}
					mu.Lock()
					total.Claims += sw.Claims
					total.Requeued += sw.Requeued
					mu.Unlock()
					if sw.Claims == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		if total.Claims != claims || total.Requeued != claims*per || len(total.Expired) != 0 {
			t.Fatalf("swept %+v, want %d claims and %d messages", total, claims, claims*per)
		}
		if got := claimAll(t, st, 1); !slices.Equal(got, span(1, claims*per)) {
			t.Fatalf("after the sweeps got %d messages %v..., want 1..%d once, in order", len(got), got[:min(len(got), 10)], claims*per)
		}
		if slices.Contains(claimAll(t, st, 1), openPos[0]) {
			t.Fatal("an open claim's message was handed out again")
		}
	})
}

// Acks joining a claim group close their claims, in the claims'
// transactions.
func TestClaimGroupAck(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		defer in.Close()
		if _, err := in.Insert(ctx, rows(1, 1, 100)); err != nil {
			t.Fatal(err)
		}
		g := st.NewClaimGroup(nil)
		defer g.Close()
		deadline := time.Now().Add(time.Minute)
		var ids []int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				id := store.NewClaimID()
				got, err := g.Claim(ctx, 1, 5, store.NoBound, time.Now(), store.Confirm{ID: id, Expires: deadline})
				if err != nil || len(got) != 5 {
					t.Errorf("claim: %d, %v", len(got), err)
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			})
		}
		wg.Wait()
		if n, err := g.Ack(ctx, ids[:6]); err != nil || n != 6 {
			t.Fatalf("ack = %d, %v; want 6", n, err)
		}
		sw, err := st.Sweep(ctx, deadline, 100)
		if err != nil || (sw.Claims != 4 || sw.Requeued != 20 || len(sw.Expired) != 0) {
			t.Fatalf("sweep = %+v, %v; want the 4 claims not acknowledged", sw, err)
		}
	})
}
