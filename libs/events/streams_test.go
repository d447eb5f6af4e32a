package events_test

import (
	"context"
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
