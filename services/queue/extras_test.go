package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
)

func lookupOne(t *testing.T, br *broker.Broker, n events.Names, account, pos int64) events.TrackedSMS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := rpc.Call[events.LookupRequest, events.LookupReply](ctx, br.Conn, n.QueueLookup(),
		events.LookupRequest{AccountID: account, Positions: []int64{pos}})
	if err != nil || len(res.Messages) != 1 {
		t.Fatalf("lookup %d: %+v, %v", pos, res, err)
	}
	return res.Messages[0]
}

// Through the running service: priority order, a lifetime that ends before
// hand-out (status 4), a scheduled message handed out once due, and the
// §12 fields shown by tracking.
func TestExtrasThroughService(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := start(t, b, fastSweep)
		var f sms
		now := time.Now()
		plain, high, later, short := f.next(5), f.next(5), f.next(5), f.next(5)
		high.High = true
		later.SendAt = now.Add(4 * time.Second).UnixMilli()
		short.ValidUntil = now.Add(100 * time.Millisecond).UnixMilli()
		seq := publish(t, q.br, b.Names, plain, high, later, short)
		shortPos := events.Position(seq, 3)
		testkit.Eventually(t, 10*time.Second, "short-lived message expired", func() bool {
			return lookupOne(t, q.br, b.Names, 5, shortPos).Status == events.StatusExpired
		})
		if got := texts(claim(t, q.br, b.Names, 5, 10)); !equal(got, itemTexts(high, plain)) {
			t.Fatalf("claim = %v, want high then plain", got)
		}
		if m := lookupOne(t, q.br, b.Names, 5, events.Position(seq, 2)); m.Status != events.StatusNew || m.SendAt != later.SendAt {
			t.Fatalf("scheduled message tracked as %+v", m)
		}
		var got []events.ClaimedSMS
		testkit.Eventually(t, 20*time.Second, "scheduled message handed out when due", func() bool {
			got = claim(t, q.br, b.Names, 5, 10)
			return len(got) > 0
		})
		if time.Now().UnixMilli() < later.SendAt || !equal(texts(got), itemTexts(later)) {
			t.Fatalf("scheduled claim = %v at %v, want it after %v", texts(got), time.Now(), time.UnixMilli(later.SendAt))
		}
		if m := lookupOne(t, q.br, b.Names, 5, events.Position(seq, 1)); !m.High {
			t.Fatalf("high message tracked as %+v", m)
		}
	})
}

// Settings are validated and stored by the queue; with a lease, a message
// handed out, acknowledged and not reported goes back to its FIFO place
// with one more attempt.
func TestLeaseThroughService(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := start(t, b, fastSweep)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		get := func() events.Settings {
			s, err := rpc.Call[events.SettingsGetRequest, events.Settings](ctx, q.br.Conn, b.Names.QueueSettingsGet(), events.SettingsGetRequest{AccountID: 6})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		set := func(req events.SettingsSetRequest) (events.Settings, error) {
			req.AccountID = 6
			return rpc.Call[events.SettingsSetRequest, events.Settings](ctx, q.br.Conn, b.Names.QueueSettingsSet(), req)
		}
		if s := get(); s != events.DefaultSettings() {
			t.Fatalf("default settings %+v", s)
		}
		bad, zero, mode := 59, 0, "drop"
		for _, req := range []events.SettingsSetRequest{{LeaseSeconds: &bad}, {MaxAttempts: &zero}, {OnLeaseExpiry: &mode}} {
			if _, err := set(req); err == nil {
				t.Fatalf("settings %+v accepted", req)
			} else if e, ok := apperr.As(err); !ok || e.Code != "invalid_settings" || e.Status != 400 {
				t.Fatalf("settings %+v: %v", req, err)
			}
		}
		lease, attempts := 60, 5
		s, err := set(events.SettingsSetRequest{LeaseSeconds: &lease, MaxAttempts: &attempts})
		if err != nil || s != (events.Settings{LeaseSeconds: 60, OnLeaseExpiry: "requeue", MaxAttempts: 5}) || get() != s {
			t.Fatalf("set = %+v, %v", s, err)
		}
		// The shortest lease allowed is a minute: shorten it in the table
		// so the test need not wait one.
		if _, err := q.db.ExecContext(ctx, "UPDATE account_settings SET lease_seconds = 1 WHERE account_id = 6"); err != nil {
			t.Fatal(err)
		}
		var f sms
		a, c := f.next(6), f.next(6)
		seq := publish(t, q.br, b.Names, a, c)
		reply := confirmClaim(t, q.br, b.Names, 6, 1, 5*time.Second)
		if !equal(texts(reply.Messages), itemTexts(a)) {
			t.Fatalf("first claim %v", texts(reply.Messages))
		}
		ack(t, q.br, b.Names, reply.ClaimIDs)
		testkit.Eventually(t, 15*time.Second, "unreported message back at its place", func() bool {
			return lookupOne(t, q.br, b.Names, 6, events.Position(seq, 0)).Status == events.StatusNew
		})
		again := confirmClaim(t, q.br, b.Names, 6, 2, 5*time.Second)
		if !equal(texts(again.Messages), itemTexts(a, c)) {
			t.Fatalf("claim after the lease = %v, want the requeued one first", texts(again.Messages))
		}
		if m := lookupOne(t, q.br, b.Names, 6, events.Position(seq, 0)); m.Attempts != 2 {
			t.Fatalf("attempts %d, want 2", m.Attempts)
		}
	})
}
