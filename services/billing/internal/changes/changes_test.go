package changes

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/billing/internal/metrics"
)

// replica stands for one ingress cache: it subscribes to the broadcasts
// and acknowledges each with its id once release lets it.
func replica(t *testing.T, url string, names events.Names, id string, got chan<- events.AccountChanged, release <-chan struct{}) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	_, err = nc.Subscribe(names.BillingAccountChanged(), func(m *nats.Msg) {
		var ev events.AccountChanged
		if err := events.Unmarshal(m.Data, &ev); err != nil {
			return
		}
		got <- ev
		<-release
		_ = m.Respond([]byte(id))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestChangedWaitsForEveryPresentReplica(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		br := b.Broker(t)
		kv, err := br.JS.CreateOrUpdateKeyValue(ctx, events.IngressCachesConfig(b.Names, 1))
		if err != nil {
			t.Fatal(err)
		}
		gotA, gotB := make(chan events.AccountChanged, 4), make(chan events.AccountChanged, 4)
		releaseA, releaseB := make(chan struct{}), make(chan struct{})
		close(releaseB)
		replica(t, b.NATSURL, b.Names, "a", gotA, releaseA)
		replica(t, b.NATSURL, b.Names, "b", gotB, releaseB)
		for _, id := range []string{"a", "b", "silent"} {
			if _, err := kv.Put(ctx, id, nil); err != nil {
				t.Fatal(err)
			}
		}

		n := New(br.Conn, b.Names, metrics.New(prometheus.NewRegistry()).ChangesUnacknowledged, testkit.Logger(t))
		n.SetAckWait(300 * time.Millisecond)
		if err := n.Watch(ctx, br.JS, 1); err != nil {
			t.Fatal(err)
		}
		if got := n.presentNow(time.Now()); len(got) != 3 {
			t.Fatalf("present after Watch: %v", got)
		}

		// "silent" has a key but never answers: Changed gives up after its
		// bound and counts it.
		n.Changed(7)
		if got := testutil.ToFloat64(n.unacked); got != 1 {
			t.Fatalf("unacknowledged after a silent replica: %v", got)
		}
		<-gotA
		<-gotB
		releaseA <- struct{}{}

		// Once its key is gone it is not waited for, and Changed returns
		// only after every present replica acknowledged.
		if err := kv.Delete(ctx, "silent"); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "the deleted key seen", func() bool { return len(n.presentNow(time.Now())) == 2 })
		n.SetAckWait(10 * time.Second)
		done := make(chan struct{})
		go func() { defer close(done); n.Changed(8) }()
		if ev := <-gotA; ev.AccountID != 8 {
			t.Fatalf("replica a got %+v", ev)
		}
		if ev := <-gotB; ev.AccountID != 8 {
			t.Fatalf("replica b got %+v", ev)
		}
		select {
		case <-done:
			t.Fatal("Changed returned before replica a acknowledged")
		default:
		}
		releaseA <- struct{}{}
		<-done
		if got := testutil.ToFloat64(n.unacked); got != 1 {
			t.Fatalf("unacknowledged after every replica answered: %v", got)
		}

		// A key older than the presence bound is not waited for.
		if got := n.presentNow(time.Now().Add(events.IngressCacheTTL)); len(got) != 0 {
			t.Fatalf("stale keys counted present: %v", got)
		}
	})
}
