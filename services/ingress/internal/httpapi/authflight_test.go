package httpapi

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// heardCache returns a cache that hears billing's broadcasts and is
// announced, so it keeps answers.
func heardCache(t *testing.T, b testkit.Backend) *authCache {
	t.Helper()
	br := b.Broker(t)
	c := newAuthCache(time.Minute)
	sub, err := c.subscribe(br.Conn, b.Names)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := br.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	kv, err := br.JS.CreateOrUpdateKeyValue(t.Context(), events.IngressCachesConfig(b.Names, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.announce(t.Context(), kv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	return c
}

// Concurrent misses of one token ask billing once; a miss that begins after
// an account change (a drop) asks again rather than joining a lookup begun
// before it, whose answer may predate the change.
func TestConcurrentLookupsShareOne(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		c := heardCache(t, b)
		now := time.Now()
		const month = "2026-12"
		old := events.AuthReply{AccountID: 1, RateLimitPerMinute: 60, SubscriptionActive: true, MonthlyLimit: 100}
		fresh := old
		fresh.RateLimitPerMinute = 120
		var fetches atomic.Int32
		release := make(chan struct{})
		answer := old
		fetch := func(context.Context) (events.AuthReply, error) {
			fetches.Add(1)
			<-release
			return answer, nil
		}
		const callers = 20
		var wg sync.WaitGroup
		got := make([]events.AuthReply, callers)
		for i := range callers {
			wg.Go(func() {
				var err error
				if got[i], err = c.lookup(context.Background(), "da", month, now, fetch); err != nil {
					t.Errorf("lookup: %v", err)
				}
			})
		}
		testkit.Eventually(t, 10*time.Second, "the first lookup begun", func() bool { return fetches.Load() >= 1 })
		time.Sleep(50 * time.Millisecond) // let the other callers join it
		// A change arrives while the lookup is in flight: a caller from now
		// on must not get the lookup's answer.
		c.drop(1)
		late := make(chan events.AuthReply, 1)
		go func() {
			r, err := c.lookup(context.Background(), "da", month, now, func(context.Context) (events.AuthReply, error) {
				fetches.Add(1)
				return fresh, nil
			})
			if err != nil {
				t.Errorf("late lookup: %v", err)
			}
			late <- r
		}()
		var lateGot events.AuthReply
		select {
		case lateGot = <-late:
		case <-time.After(10 * time.Second):
			t.Fatal("a lookup begun after the drop waited for the one begun before it")
		}
		close(release)
		wg.Wait()
		if lateGot != fresh {
			t.Fatalf("a lookup begun after the drop got %+v, want the fresh answer", lateGot)
		}
		for i, r := range got {
			if r != old {
				t.Fatalf("caller %d got %+v", i, r)
			}
		}
		if n := fetches.Load(); n != 2 {
			t.Fatalf("%d fetches for %d concurrent callers and one after a drop, want 2", n, callers)
		}
		// The shared lookup began before the drop: not kept. The late one is.
		if r, _, ok := c.get("da", month, now); !ok || r != fresh {
			t.Fatalf("cached %+v %v, want the answer fetched after the drop", r, ok)
		}
	})
}

// A caller whose context ends stops waiting for a shared lookup; the
// others still get its answer.
func TestSharedLookupOutlivesACaller(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		c := heardCache(t, b)
		now := time.Now()
		want := events.AuthReply{AccountID: 2, SubscriptionActive: true, MonthlyLimit: 10}
		release := make(chan struct{})
		started := make(chan struct{})
		fetch := func(ctx context.Context) (events.AuthReply, error) {
			close(started)
			<-release
			return want, ctx.Err() // the leader's cancellation must not reach the shared call
		}
		ctx, cancel := context.WithCancel(context.Background())
		leader := make(chan error, 1)
		go func() { _, err := c.lookup(ctx, "db", "2026-12", now, fetch); leader <- err }()
		<-started
		follower := make(chan events.AuthReply, 1)
		go func() {
			r, err := c.lookup(context.Background(), "db", "2026-12", now, fetch)
			if err != nil {
				t.Errorf("follower: %v", err)
			}
			follower <- r
		}()
		time.Sleep(50 * time.Millisecond)
		cancel()
		if err := <-leader; err == nil {
			t.Fatal("a caller whose context ended got no error")
		}
		close(release)
		if r := <-follower; r != want {
			t.Fatalf("follower got %+v, want %+v", r, want)
		}
	})
}
