package app

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// What a run fetched and never acknowledged (it died) is delivered again at
// once after redeliverOrphans, not after the consumer's 10 s AckWait; a
// message acknowledged before is not.
func TestRedeliverOrphans(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	br, err := broker.Open(ctx, broker.Config{DataDir: t.TempDir(), Name: "test"}, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	n := events.NewNames(testkit.Namespace())
	if err := events.EnsureStreams(ctx, br.JS, n, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c"} {
		if _, err := br.JS.Publish(ctx, n.AcceptedSubject(), []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := br.JS.Consumer(ctx, n.AcceptedStream(), events.DurableQueueIngest)
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(max int) []jetstream.Msg {
		batch, err := cons.Fetch(max, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []jetstream.Msg
		for m := range batch.Messages() {
			got = append(got, m)
		}
		return got
	}
	// The "dead run": acknowledges a, fetches b and c, never acknowledges them.
	held := fetch(3)
	if len(held) != 3 {
		t.Fatalf("fetched %d, want 3", len(held))
	}
	if err := held[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fetch(3); len(got) != 0 {
		t.Fatalf("before the reset, %d messages came back within the ack wait", len(got))
	}

	if err := redeliverOrphans(ctx, br.JS, testkit.Logger(t)); err != nil {
		t.Fatal(err)
	}
	got := fetch(3)
	if len(got) != 2 || string(got[0].Data()) != "b" || string(got[1].Data()) != "c" {
		var data []string
		for _, m := range got {
			data = append(data, string(m.Data()))
		}
		t.Fatalf("after the reset got %q, want b and c at once", data)
	}
	// Nothing pending: a second call changes nothing.
	for _, m := range got {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := redeliverOrphans(ctx, br.JS, testkit.Logger(t)); err != nil {
		t.Fatal(err)
	}
	if got := fetch(3); len(got) != 0 {
		t.Fatalf("after everything was acknowledged, %d came again", len(got))
	}
}
