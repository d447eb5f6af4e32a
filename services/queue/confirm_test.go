package queue_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue"
)

// confirmClaim claims as ingress does: to be confirmed, with a bound on the
// wait.
func confirmClaim(t *testing.T, br *broker.Broker, n events.Names, account int64, limit int, wait time.Duration) events.ClaimReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := rpc.Call[events.ClaimRequest, events.ClaimReply](ctx, br.Conn, n.QueueClaim(),
		events.ClaimRequest{AccountID: account, Limit: limit, Confirm: true, WaitMs: wait.Milliseconds()})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return reply
}

func ack(t *testing.T, br *broker.Broker, n events.Names, ids []int64) {
	t.Helper()
	data, err := events.Marshal(events.ClaimAck{ClaimIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Conn.Publish(n.QueueClaimAck(), data); err != nil {
		t.Fatal(err)
	}
}

func fastSweep(c *queue.Config) {
	c.ClaimConfirmTimeout = 2 * time.Second
	c.ClaimSweepInterval = 20 * time.Millisecond
}

// Over two replicas: a claim its caller never acknowledges (the ingress
// died) is handed out again after the confirm timeout, at its FIFO place
// and once; an acknowledged claim, older than it, never is.
func TestUnacknowledgedClaimHandedOutAgain(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q1 := start(t, b, fastSweep)
		q2 := start(t, b, fastSweep)
		var f sms
		var items []events.AcceptedSMS
		for range 10 {
			items = append(items, f.next(3))
		}
		publish(t, q1.br, b.Names, items...)
		all := itemTexts(items...)

		kept := confirmClaim(t, q1.br, b.Names, 3, 2, 5*time.Second)
		if !equal(texts(kept.Messages), all[:2]) || len(kept.ClaimIDs) != 1 {
			t.Fatalf("first claim: %v ids %v", texts(kept.Messages), kept.ClaimIDs)
		}
		ack(t, q1.br, b.Names, kept.ClaimIDs)
		lost := confirmClaim(t, q1.br, b.Names, 3, 3, 5*time.Second) // never acknowledged
		if !equal(texts(lost.Messages), all[2:5]) {
			t.Fatalf("second claim: %v", texts(lost.Messages))
		}
		if got := texts(claim(t, q1.br, b.Names, 3, 1)); !equal(got, all[5:6]) {
			t.Fatalf("a claim while the lost one is open got %v, want %v", got, all[5:6])
		}
		// The acknowledged claim expires first: by the time the lost one is
		// swept, it would have been too.
		testkit.Eventually(t, 30*time.Second, "the lost claim swept", func() bool {
			return counter(t, q1.reg, "apitosms_queue_requeued_messages_total")+
				counter(t, q2.reg, "apitosms_queue_requeued_messages_total") >= 3
		})
		again := texts(claim(t, q2.br, b.Names, 3, 200))
		want := append(slices.Clone(all[2:5]), all[6:]...)
		if !equal(again, want) {
			t.Fatalf("after the confirm timeout got %v, want %v (the lost claim's at their FIFO place, then the rest)", again, want)
		}
		if rest := claim(t, q1.br, b.Names, 3, 200); len(rest) != 0 {
			t.Fatalf("then got %v, want nothing", texts(rest))
		}
		acked := counter(t, q1.reg, "apitosms_queue_claims_acked_total") + counter(t, q2.reg, "apitosms_queue_claims_acked_total")
		expired := counter(t, q1.reg, "apitosms_queue_claims_expired_total") + counter(t, q2.reg, "apitosms_queue_claims_expired_total")
		requeued := counter(t, q1.reg, "apitosms_queue_requeued_messages_total") + counter(t, q2.reg, "apitosms_queue_requeued_messages_total")
		if acked != 1 || expired != 1 || requeued != 3 {
			t.Fatalf("metrics: acked %v expired %v requeued %v; want 1, 1, 3", acked, expired, requeued)
		}
	})
}

// A claim whose caller has stopped waiting by the time it would run is not
// made: the messages stay new for the next poll.
func TestClaimNotMadeForAGoneCaller(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := start(t, b)
		var f sms
		items := []events.AcceptedSMS{f.next(4), f.next(4)}
		publish(t, q.br, b.Names, items...)
		testkit.Eventually(t, 10*time.Second, "messages stored", func() bool { return statusOf(t, q.db, items[1].Text) == 0 })

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// 1 ms of patience, less than the reply's way back: nothing is claimed.
		_, err := rpc.Call[events.ClaimRequest, events.ClaimReply](ctx, q.br.Conn, b.Names.QueueClaim(),
			events.ClaimRequest{AccountID: 4, Limit: 10, Confirm: true, WaitMs: 1})
		if e, ok := apperr.As(err); !ok || e.Code != "unavailable" {
			t.Fatalf("claim for a caller already gone: %v, want unavailable", err)
		}
		if got := texts(claim(t, q.br, b.Names, 4, 10)); !equal(got, itemTexts(items...)) {
			t.Fatalf("next claim got %v, want both messages", got)
		}
	})
}

// A phone that got its answer reports a message while the claim is still
// unconfirmed (its ingress died before the ack left): the sweep hands out
// the claim's other messages again, never the reported one.
func TestReportedBeforeConfirmTimeoutNotHandedOutAgain(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		q := start(t, b, fastSweep)
		var f sms
		items := []events.AcceptedSMS{f.next(6), f.next(6), f.next(6)}
		publish(t, q.br, b.Names, items...)
		lost := confirmClaim(t, q.br, b.Names, 6, 3, 5*time.Second)
		if len(lost.Messages) != 3 {
			t.Fatalf("claim: %v", texts(lost.Messages))
		}
		report(t, q.br, b.Names, 6, events.Reported{Pos: lost.Messages[1].Pos, Status: events.StatusSent})
		testkit.Eventually(t, 10*time.Second, "report applied", func() bool {
			return statusOf(t, q.db, items[1].Text) == events.StatusSent
		})
		testkit.Eventually(t, 30*time.Second, "the claim swept", func() bool {
			return counter(t, q.reg, "apitosms_queue_claims_expired_total") == 1
		})
		if got, want := texts(claim(t, q.br, b.Names, 6, 10)), itemTexts(items[0], items[2]); !equal(got, want) {
			t.Fatalf("after the sweep got %v, want %v", got, want)
		}
	})
}
