package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

func TestEnsureStreams(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		br, err := broker.Open(ctx, broker.Config{URL: b.NATSURL, Name: t.Name()}, testkit.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(br.Close)
		n := b.Names
		for i := range 2 {
			if err := events.EnsureStreams(ctx, br.JS, n, events.Topology{}); err != nil {
				t.Fatalf("EnsureStreams #%d: %v", i+1, err)
			}
		}
		want := []struct {
			stream    string
			subject   string
			retention jetstream.RetentionPolicy
			durables  []string
		}{
			{n.AcceptedStream(), n.AcceptedSubject(), jetstream.InterestPolicy,
				[]string{events.DurableQueueIngest, events.DurableStatusIngest}},
			{n.ReportedStream(), n.ReportedSubject(), jetstream.InterestPolicy,
				[]string{events.DurableQueueReported}},
			{n.NotifyStream(), n.NotifySubjects(), jetstream.InterestPolicy,
				[]string{events.DurableWebhooksFanout}},
			{n.DeadLetterStream(), n.DeadLetterSubjects(), jetstream.LimitsPolicy, nil},
		}
		for _, w := range want {
			s, err := br.JS.Stream(ctx, w.stream)
			if err != nil {
				t.Fatalf("stream %s: %v", w.stream, err)
			}
			cfg := s.CachedInfo().Config
			if cfg.Storage != jetstream.FileStorage || cfg.Retention != w.retention ||
				len(cfg.Subjects) != 1 || cfg.Subjects[0] != w.subject || cfg.Replicas != 1 {
				t.Errorf("stream %s: storage %v retention %v subjects %v replicas %d",
					w.stream, cfg.Storage, cfg.Retention, cfg.Subjects, cfg.Replicas)
			}
			var names []string
			for name := range s.ConsumerNames(ctx).Name() {
				names = append(names, name)
			}
			if len(names) != len(w.durables) {
				t.Errorf("stream %s has consumers %v, want %v", w.stream, names, w.durables)
			}
			for _, d := range w.durables {
				c, err := s.Consumer(ctx, d)
				if err != nil {
					t.Errorf("consumer %s on %s: %v", d, w.stream, err)
					continue
				}
				cc := c.CachedInfo().Config
				if cc.Durable != d || cc.AckPolicy != jetstream.AckExplicitPolicy || cc.DeliverPolicy != jetstream.DeliverAllPolicy {
					t.Errorf("consumer %s: durable %q ack %v deliver %v", d, cc.Durable, cc.AckPolicy, cc.DeliverPolicy)
				}
			}
		}
		// A publish to each event subject is stored.
		for _, subj := range []string{n.AcceptedSubject(), n.ReportedSubject(), n.DeadLetterSubject("x")} {
			if _, err := br.JS.Publish(ctx, subj, []byte("{}")); err != nil {
				t.Errorf("publish %s: %v", subj, err)
			}
		}
	})
}

func TestNames(t *testing.T) {
	cases := []struct {
		ns, subjectPrefix, streamPrefix string
	}{
		{"", "apitosms", "APITOSMS"},
		{"apitosms", "apitosms", "APITOSMS"},
		{"Prod-1", "prod-1", "PROD-1"},
		{"a.b c>*", "a_b_c__", "A_B_C__"},
		{"ünï", "_n_", "_N_"},
	}
	for _, c := range cases {
		n := events.NewNames(c.ns)
		if n.Namespace() != c.subjectPrefix {
			t.Errorf("NewNames(%q).Namespace() = %q, want %q", c.ns, n.Namespace(), c.subjectPrefix)
		}
		if got := n.AcceptedStream(); got != c.streamPrefix+"_SMS_ACCEPTED" {
			t.Errorf("NewNames(%q).AcceptedStream() = %q", c.ns, got)
		}
		if got := n.AcceptedSubject(); got != c.subjectPrefix+".sms.v1.accepted" {
			t.Errorf("NewNames(%q).AcceptedSubject() = %q", c.ns, got)
		}
		if got := n.BillingAuth(); got != c.subjectPrefix+".rpc.billing.v1.auth" {
			t.Errorf("NewNames(%q).BillingAuth() = %q", c.ns, got)
		}
	}
	n := events.NewNames("x")
	if got := len(n.Streams()); got != 3 {
		t.Errorf("Streams() lists %d, want 3", got)
	}
	if got, want := n.DeadLetterSubject("queue-ingest"), "x.deadletter.v1.queue-ingest"; got != want {
		t.Errorf("DeadLetterSubject = %q, want %q", got, want)
	}
}

func TestPositionIsStrictlyIncreasing(t *testing.T) {
	var prev int64 = -1
	for _, seq := range []uint64{1, 2, 3, 1000, 1 << 40} {
		for _, idx := range []int{0, 1, 2, events.MaxItemsPerEvent - 2, events.MaxItemsPerEvent - 1} {
			p := events.Position(seq, idx)
			if p <= prev {
				t.Fatalf("Position(%d, %d) = %d, not above previous %d", seq, idx, p, prev)
			}
			prev = p
		}
	}
	if events.Position(1, events.MaxItemsPerEvent-1) >= events.Position(2, 0) {
		t.Error("last item of seq 1 not before first item of seq 2")
	}
}

// PublishNotifications stores a batch whose bytes are what Marshal of the
// NotificationBatch gives (the format the webhooks service decodes), ids
// and text needing escapes included.
func TestPublishNotificationsWireFormat(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		br, err := broker.Open(ctx, broker.Config{URL: b.NATSURL, Name: t.Name()}, testkit.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(br.Close)
		if err := events.EnsureStreams(ctx, br.JS, b.Names, events.Topology{}); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 12, 1, 17, 4, 5, 120000000, time.UTC)
		sms := events.TrackedSMS{Pos: 9, Phone: "+491511", Text: "Grüße \"<ok>\" \\ 🎉\n\u2028", Status: events.StatusFailed, QueuedAt: at, FinishedAt: &at, Attempts: 2}
		msg, ok := events.MessageNotification(5, "abc", sms)
		if !ok {
			t.Fatal("no notification")
		}
		ns := []events.Notification{
			msg,
			{ID: "evt_<1>", AccountID: 5, Type: events.TypeWebhookTest, Endpoint: "wh_é"}, // At and Data filled
		}
		if err := events.PublishNotifications(ctx, br.JS, b.Names, "wire-"+t.Name(), ns); err != nil {
			t.Fatal(err)
		}
		want, err := events.Marshal(events.NotificationBatch{Batch: ns}) // ns as PublishNotifications filled it
		if err != nil {
			t.Fatal(err)
		}
		st, err := br.JS.Stream(ctx, b.Names.NotifyStream())
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.GetLastMsgForSubject(ctx, b.Names.NotifyBatchSubject())
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Data) != string(want) {
			t.Fatalf("stored\n%s\nwant\n%s", got.Data, want)
		}
		if string(ns[1].Data) != "{}" || ns[1].At.IsZero() {
			t.Fatalf("defaults not filled: %+v", ns[1])
		}
	})
}
