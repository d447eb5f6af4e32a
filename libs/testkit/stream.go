package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/events"
)

// DeadLetters returns the messages in namespace n's dead-letter stream.
func DeadLetters(t testing.TB, br *broker.Broker, n events.Names) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := br.JS.Stream(ctx, n.DeadLetterStream())
	if err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get dead letter %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// Pull takes the next count messages of stream from durable, as a consumer
// process would, and leaves them unacknowledged.
func Pull(t testing.TB, br *broker.Broker, stream, durable string, count int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := br.JS.Consumer(ctx, stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := cons.Fetch(count, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for msg := range fetched.Messages() {
		msgs = append(msgs, msg)
	}
	if len(msgs) != count {
		t.Fatalf("pulled %d messages, want %d", len(msgs), count)
	}
	return msgs
}

// CaughtUp returns once durable has acknowledged (or terminated) every
// message stream holds now: the read-your-writes wait of the services.
func CaughtUp(t testing.TB, br *broker.Broker, stream, durable string) {
	t.Helper()
	ctx := context.Background()
	wait, err := consumer.NewCatchUp(ctx, br.JS, stream, durable, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wait.Wait(ctx); err != nil {
		t.Fatalf("%s catching up: %v", durable, err)
	}
}

// StreamState returns stream's state now (messages, first and last sequence).
func StreamState(t testing.TB, js jetstream.JetStream, stream string) jetstream.StreamState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State
}
