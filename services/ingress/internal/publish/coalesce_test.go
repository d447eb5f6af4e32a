package publish

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// Concurrent small requests share stream messages, every item is stored
// once, each request's items stay contiguous and in order, and each gets
// back the positions its items were stored at.
func TestCoalescedPublishes(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		br := b.Broker(t)
		p := New(br.JS, b.Names.AcceptedSubject(), br.Conn.MaxPayload())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx, 2); close(done) }()
		const requests, per = 300, 3
		var wg sync.WaitGroup
		var mu sync.Mutex
		returned := map[string]int64{} // item text -> position Publish returned
		for r := 0; r < requests; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				items := make([]events.AcceptedSMS, per)
				for i := range items {
					items[i] = events.AcceptedSMS{AccountID: 1, Phone: "+15550000000", Text: fmt.Sprintf("%d/%d", r, i)}
				}
				positions, err := p.Publish(context.Background(), fmt.Sprint(r), time.Now(), items, true)
				if err != nil || len(positions) != per {
					t.Errorf("publish: %d positions, %v", len(positions), err)
					return
				}
				mu.Lock()
				for i, it := range items {
					returned[it.Text] = positions[i]
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		cancel()
		<-done
		s, info := acceptedStream(t, br.JS, b.Names)
		if info.State.Msgs >= requests {
			t.Fatalf("%d stream messages for %d requests: nothing was shared", info.State.Msgs, requests)
		}
		seen := map[string]bool{}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(context.Background(), seq)
			if err != nil {
				t.Fatal(err)
			}
			var batch events.AcceptedBatch
			if err := jsonUnmarshal(m.Data, &batch); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(batch.Items); i += per {
				var r int
				if _, err := fmt.Sscanf(batch.Items[i].Text, "%d/", &r); err != nil {
					t.Fatalf("item text %q: %v", batch.Items[i].Text, err)
				}
				for k := 0; k < per; k++ {
					text := batch.Items[i+k].Text
					if want := fmt.Sprintf("%d/%d", r, k); text != want {
						t.Fatalf("request %d split or reordered: %s", r, text)
					}
					seen[text] = true
					if got, want := returned[text], events.Position(seq, i+k); got != want {
						t.Fatalf("%s: Publish returned position %d, stored at %d", text, got, want)
					}
				}
			}
		}
		if len(seen) != requests*per {
			t.Fatalf("stored %d items, want %d", len(seen), requests*per)
		}
		t.Logf("%d requests in %d stream messages", requests, info.State.Msgs)
	})
}

// acceptedStream returns the accepted stream and its state now.
func acceptedStream(t testing.TB, js jetstream.JetStream, names events.Names) (jetstream.Stream, *jetstream.StreamInfo) {
	t.Helper()
	s, err := js.Stream(context.Background(), names.AcceptedStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s, info
}

// Requests waiting while no publish can start go out together: with one
// loop, what queued up behind the loop is one stream message (ingress runs
// one loop for that reason; with several, the same requests are spread over
// several messages, each its own fsync).
func TestOneLoopTakesAllWaiting(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		br := b.Broker(t)
		p := New(br.JS, b.Names.AcceptedSubject(), br.Conn.MaxPayload())
		const requests = SharedMax
		var wg sync.WaitGroup
		for r := range requests {
			wg.Go(func() {
				item := []events.AcceptedSMS{{AccountID: 1, Phone: "+15550000000", Text: fmt.Sprint(r)}}
				if _, err := p.Publish(context.Background(), fmt.Sprint(r), time.Now(), item, true); err != nil {
					t.Errorf("publish: %v", err)
				}
			})
		}
		testkit.Eventually(t, 10*time.Second, "requests waiting", func() bool { return p.shared.Waiting() == requests })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx, 1); close(done) }()
		wg.Wait()
		cancel()
		<-done
		_, info := acceptedStream(t, br.JS, b.Names)
		if info.State.Msgs != 1 {
			t.Fatalf("%d waiting one-item requests in %d stream messages, want 1", requests, info.State.Msgs)
		}
	})
}

// BenchmarkPublishSingles compares one-item requests published alone
// (one fsync each) with coalesced ones, 32 at a time, by one or four
// coalescing loops. items/msg is how many requests a stream message
// carried; cpu-us/req the whole process's CPU (the embedded broker's
// storing and fsyncs included) per request.
func BenchmarkPublishSingles(b *testing.B) {
	for _, c := range []struct {
		shared bool
		loops  int
	}{{false, 1}, {true, 4}, {true, 1}} {
		b.Run(fmt.Sprintf("shared=%v/loops=%d", c.shared, c.loops), func(b *testing.B) {
			be := testkit.Embedded(b)
			br := be.Broker(b)
			p := New(br.JS, be.Names.AcceptedSubject(), br.Conn.MaxPayload())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go p.Run(ctx, c.loops)
			_, before := acceptedStream(b, br.JS, be.Names)
			item := []events.AcceptedSMS{{AccountID: 1, Phone: "+15550000000", Text: "Your order has shipped"}}
			cpu := testkit.ProcessCPU()
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.Publish(context.Background(), NewRequestID(), time.Now(), item, c.shared); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu = testkit.ProcessCPU() - cpu
			_, after := acceptedStream(b, br.JS, be.Names)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
			b.ReportMetric(float64(b.N)/float64(max(after.State.LastSeq-before.State.LastSeq, 1)), "items/msg")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/req")
		})
	}
}

// Once Run has stopped, a small request is refused as unavailable (a 503
// the client may retry), not left waiting for a loop that is gone; a
// request too large to share still publishes on its own.
func TestSharedRefusedAfterRun(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		br := b.Broker(t)
		p := New(br.JS, b.Names.AcceptedSubject(), br.Conn.MaxPayload())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p.Run(ctx, 1) // returns at once: ctx has ended and nothing waits
		item := []events.AcceptedSMS{{AccountID: 1, Phone: "+15550000000", Text: "late"}}
		if _, err := p.Publish(context.Background(), "late", time.Now(), item, true); !apperr.Unavailable(err) {
			t.Fatalf("shared publish after Run stopped: %v, want unavailable", err)
		}
		if positions, err := p.Publish(context.Background(), "alone", time.Now(), item, false); err != nil || len(positions) != 1 {
			t.Fatalf("unshared publish after Run stopped: %v, %v", positions, err)
		}
	})
}
