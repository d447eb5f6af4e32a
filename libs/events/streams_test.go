package events_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// Five processes starting at the same moment against a fresh namespace all
// get their streams, durables and buckets, on one server and on a
// three-node cluster with replicated streams (where JetStream leaves
// requests about a stream still being created unanswered: without a bound
// on each attempt, all but the first waited for their whole start timeout).
func TestEnsureStreamsConcurrently(t *testing.T) {
	t.Run("one-server", func(t *testing.T) {
		ensureConcurrently(t, []string{testkit.Embedded(t).NATSURL}, 1)
	})
	t.Run("cluster-r3", func(t *testing.T) {
		c := testkit.StartCluster(t, 3)
		ensureConcurrently(t, c.URLs(), 3)
	})
}

func ensureConcurrently(t *testing.T, urls []string, replicas int) {
	t.Helper()
	names := events.NewNames(testkit.Namespace())
	const procs = 5
	brokers := make([]*broker.Broker, procs)
	for i := range brokers {
		// Each "process" on its own connection, spread over the nodes.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		b, err := broker.Open(ctx, broker.Config{URL: urls[i%len(urls)], Name: "start"}, testkit.Logger(t))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		brokers[i] = b
	}
	// A start timeout as run uses; every process must be done well before it.
	const bound = 20 * time.Second
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make([]error, procs)
	took := make([]time.Duration, procs)
	for i, b := range brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			<-gate
			t0 := time.Now()
			defer func() { took[i] = time.Since(t0) }()
			if errs[i] = events.EnsureStreams(ctx, b.JS, names, events.Topology{Replicas: replicas}); errs[i] != nil {
				return
			}
			if _, errs[i] = broker.EnsureKeyValue(ctx, b.JS, jetstream.KeyValueConfig{
				Bucket: names.RateLimitBucket(), History: 1, TTL: time.Minute,
				Storage: jetstream.MemoryStorage, Replicas: replicas,
			}); errs[i] != nil {
				return
			}
			_, errs[i] = broker.EnsureObjectStore(ctx, b.JS, jetstream.ObjectStoreConfig{
				Bucket: names.Namespace() + "_objects", Replicas: replicas,
			})
		}()
	}
	close(gate)
	wg.Wait()
	for i := range errs {
		t.Logf("process %d ready in %v", i, took[i].Round(time.Millisecond))
		if errs[i] != nil {
			t.Errorf("process %d: %v", i, errs[i])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for stream, durables := range map[string][]string{
		names.AcceptedStream(): {events.DurableQueueIngest, events.DurableStatusIngest},
		names.ReportedStream(): {events.DurableQueueReported},
	} {
		s, err := brokers[0].JS.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		if got := s.CachedInfo().Config.Replicas; got != replicas {
			t.Errorf("stream %s has %d replicas, want %d", stream, got, replicas)
		}
		for _, d := range durables {
			if _, err := s.Consumer(ctx, d); err != nil {
				t.Errorf("durable %s on %s: %v", d, stream, err)
			}
		}
	}
}

// A notify stream created with limits retention (the earlier releases')
// becomes an interest stream on the next start: the events the fan-out
// durable already acknowledged leave it, the ones it has not yet read stay
// and are still delivered, and from then on an event leaves once it is
// acknowledged (the broker no longer keeps days of events, and their blocks
// in memory).
func TestNotifyStreamSwitchedToInterestKeepsUnread(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		br, err := broker.Open(ctx, broker.Config{URL: b.NATSURL, Name: t.Name()}, testkit.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(br.Close)
		n := b.Names
		// The earlier release's stream and durable.
		old, err := br.JS.CreateStream(ctx, jetstream.StreamConfig{
			Name:      n.NotifyStream(),
			Subjects:  []string{n.NotifySubjects()},
			Storage:   jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy,
			MaxAge:    events.NotifyRetention,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = br.JS.DeleteStream(context.Background(), n.NotifyStream()) })
		durable, err := old.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       events.DurableWebhooksFanout,
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"read-1", "read-2", "unread-1", "unread-2"} {
			if _, err := br.JS.Publish(ctx, n.NotifyBatchSubject(), []byte(id), jetstream.WithMsgID(id)); err != nil {
				t.Fatal(err)
			}
		}
		ackNext := func(k int) []string {
			t.Helper()
			batch, err := durable.Fetch(k, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for m := range batch.Messages() {
				got = append(got, string(m.Data()))
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
			}
			return got
		}
		if got := ackNext(2); len(got) != 2 || got[0] != "read-1" || got[1] != "read-2" {
			t.Fatalf("read before the switch: %v", got)
		}
		if got := testkit.StreamState(t, br.JS, n.NotifyStream()).Msgs; got != 4 {
			t.Fatalf("limits retention keeps acknowledged events: %d messages, want 4", got)
		}

		if err := events.EnsureStreams(ctx, br.JS, n, events.Topology{}); err != nil {
			t.Fatal(err)
		}
		s, err := br.JS.Stream(ctx, n.NotifyStream())
		if err != nil {
			t.Fatal(err)
		}
		// A server before 2.10 cannot switch retention: the stream keeps
		// limits retention and every event (the shared CI server is 2.9).
		wantRetention, wantLeft := jetstream.InterestPolicy, uint64(0)
		if !atLeast210(br.Conn.ConnectedServerVersion()) {
			wantRetention, wantLeft = jetstream.LimitsPolicy, 4
		}
		if r := s.CachedInfo().Config.Retention; r != wantRetention {
			t.Fatalf("retention after EnsureStreams on nats-server %s: %v, want %v", br.Conn.ConnectedServerVersion(), r, wantRetention)
		}
		if got, want := testkit.StreamState(t, br.JS, n.NotifyStream()).Msgs, max(wantLeft, 2); got != want {
			t.Fatalf("after EnsureStreams the stream holds %d messages, want %d", got, want)
		}
		if got := ackNext(2); len(got) != 2 || got[0] != "unread-1" || got[1] != "unread-2" {
			t.Fatalf("unread events after EnsureStreams: %v", got)
		}
		if got := testkit.StreamState(t, br.JS, n.NotifyStream()).Msgs; got != wantLeft {
			t.Fatalf("the stream holds %d messages after every event was acknowledged, want %d", got, wantLeft)
		}
	})
}

// atLeast210 reports a nats-server version ("2.9.10", "2.15.2") from 2.10 on.
func atLeast210(v string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return true
	}
	return major > 2 || major == 2 && minor >= 10
}
