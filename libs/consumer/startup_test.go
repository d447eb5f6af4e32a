package consumer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/consumer"
	"github.com/apitosms/apitosms/libs/testkit"
)

// Startup is ready once the consumer has processed what the stream held
// when it was created, not before; later messages do not make it unready.
func TestStartupReadyAfterCatchingUp(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		f := newFixture(t, b)
		ctx := context.Background()
		// An empty stream: ready at once.
		empty, err := consumer.NewStartup(ctx, f.br.JS, consumer.Watch{Stream: f.cfg.Stream, Durable: f.cfg.Durable})
		if err != nil {
			t.Fatal(err)
		}
		if err := empty.Ready(ctx); err != nil {
			t.Fatalf("empty stream: %v", err)
		}

		f.publish(t, 5)
		s, err := consumer.NewStartup(ctx, f.br.JS, consumer.Watch{Stream: f.cfg.Stream, Durable: f.cfg.Durable})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ready(ctx); err == nil || !strings.Contains(err.Error(), f.cfg.Durable+" catching up") {
			t.Fatalf("5 messages not processed: Ready = %v, want catching up", err)
		}
		stop := f.start(t, func(context.Context, []jetstream.Msg) error { return nil })
		testkit.Eventually(t, 10*time.Second, "ready once processed", func() bool { return s.Ready(ctx) == nil })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		f.publish(t, 3) // not processed: the consumer is stopped
		if err := s.Ready(ctx); err != nil {
			t.Errorf("after messages published since start: %v", err)
		}
	})
}
