package status_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status"
)

// reportedIn is what the reported stream holds: the stream sequences of
// the messages naming each position, and how many messages were arrays.
type reportedIn struct {
	seqs     map[int64][]uint64
	messages uint64
	arrays   int
	array    map[uint64]bool // the sequences of arrays
}

func (h *harness) reportedStream(t testing.TB) reportedIn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := h.br.JS.Stream(ctx, h.b.Names.ReportedStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := reportedIn{seqs: map[int64][]uint64{}, messages: info.State.LastSeq, array: map[uint64]bool{}}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		msg, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		evs, err := events.DecodeReported(nil, msg.Data)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if msg.Data[0] == '[' {
			in.arrays++
			in.array[seq] = true
		}
		for _, ev := range evs {
			for _, it := range ev.Items {
				in.seqs[it.Pos] = append(in.seqs[it.Pos], seq)
			}
		}
	}
	return in
}

// lastSeq is the reported stream's last sequence.
func (h *harness) lastSeq(t testing.TB) uint64 {
	t.Helper()
	s, err := h.br.JS.Stream(context.Background(), h.b.Names.ReportedStream())
	if err != nil {
		t.Error(err)
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Error(err)
		return 0
	}
	return info.State.LastSeq
}

// applyAll sends one request of per reports (sent) for each run of per
// positions, all at once, checks each reply counts them all, and returns
// the reported stream's last sequence seen by each request after its
// reply.
func (h *harness) applyAll(t *testing.T, account int64, positions []int64, per int) []uint64 {
	t.Helper()
	n := len(positions) / per
	after := make([]uint64, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := events.ApplyRequest{AccountID: account, Device: "fleet"}
			for j, p := range positions[i*per : (i+1)*per] {
				req.Reports = append(req.Reports, events.ApplyReport{Index: j, Pos: p, Status: events.StatusSent})
			}
			<-start
			rep, err := h.apply(req)
			if err != nil || rep.Updated != per {
				t.Errorf("request %d: %+v %v, want %d updated", i, rep, err, per)
				return
			}
			after[i] = h.lastSeq(t)
		})
	}
	close(start)
	wg.Wait()
	return after
}

// TestConcurrentReportsShareStreamMessages is the phone fleet's shape:
// many status requests at once publish their events in far fewer
// reported-stream messages than requests; each position is in exactly one
// of them, and each request's reply came after the message holding its
// event was stored (its sequence is at most the stream's last sequence
// when the reply arrived).
func TestConcurrentReportsShareStreamMessages(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		h := start(t, b)
		const account, requests, per = 21, 200, 3
		hs := h.accept(t, account, requests*per)
		h.waitStored(t, hs...)
		after := h.applyAll(t, account, hs, per)
		if t.Failed() {
			return
		}
		in := h.reportedStream(t)
		t.Logf("%d requests: %d stream messages (%d arrays)", requests, in.messages, in.arrays)
		if in.messages > requests/2 {
			t.Errorf("%d stream messages for %d concurrent requests, want at most %d", in.messages, requests, requests/2)
		}
		if got := h.metric(t, "apitosms_status_reported_messages_total", nil); got != float64(in.messages) {
			t.Errorf("reported_messages_total %v, stream holds %d", got, in.messages)
		}
		for i := range requests {
			for _, p := range hs[i*per : (i+1)*per] {
				seqs := in.seqs[p]
				if len(seqs) != 1 {
					t.Fatalf("position %d in messages %v, want exactly one", p, seqs)
				}
				if seqs[0] > after[i] {
					t.Fatalf("request %d replied when the stream ended at %d, before its message %d", i, after[i], seqs[0])
				}
			}
		}
		if len(in.seqs) != len(hs) {
			t.Fatalf("stream names %d positions, want %d", len(in.seqs), len(hs))
		}
		if f := h.metric(t, "apitosms_status_reported_publish_failures_total", nil); f != 0 {
			t.Errorf("%v publish failures", f)
		}
		testkit.Eventually(t, 10*time.Second, "the outbox emptied", func() bool {
			n, err := h.store.OutboxLen(context.Background())
			return err == nil && n == 0
		})
	})
}

// lossyJS is a real JetStream whose Publish (the fast path's; the relay
// publishes asynchronously) fails: the message stored but its
// acknowledgement lost, or not stored at all.
type lossyJS struct {
	jetstream.JetStream
	store bool
	calls atomic.Int64
}

func (j *lossyJS) Publish(ctx context.Context, subj string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	j.calls.Add(1)
	if j.store {
		if _, err := j.JetStream.Publish(ctx, subj, data, opts...); err != nil {
			return nil, err
		}
	}
	return nil, jetstream.ErrNoStreamResponse
}

// TestFailedCombinedPublishLosesNothing: when the combined publish fails
// (stored with its acknowledgement lost, or not stored), every request
// still answers its reports as applied, each event stays in the outbox
// and the relay publishes it alone: every position reaches the stream in
// one single-event message, and also in the combined one if that was
// stored (the queue applies the repeat as a no-op:
// TestReportedCombinedAndSingleMessages); the outbox empties.
func TestFailedCombinedPublishLosesNothing(t *testing.T) {
	for _, stored := range []bool{true, false} {
		name := map[bool]string{true: "ack-lost", false: "not-stored"}[stored]
		t.Run(name, func(t *testing.T) {
			testkit.Each(t, func(t *testing.T, b testkit.Backend) {
				cfg := status.DefaultConfig()
				cfg.OutboxInterval, cfg.OutboxAge = 20*time.Millisecond, 200*time.Millisecond
				var js *lossyJS
				h := startWrapped(t, b, cfg, func(real jetstream.JetStream) jetstream.JetStream {
					js = &lossyJS{JetStream: real, store: stored}
					return js
				})
				const account, requests, per = 22, 60, 2
				hs := h.accept(t, account, requests*per)
				h.waitStored(t, hs...)
				h.applyAll(t, account, hs, per)
				if t.Failed() {
					return
				}
				if f := h.metric(t, "apitosms_status_reported_publish_failures_total", nil); f != requests {
					t.Errorf("publish failures %v, want %d: one per request", f, requests)
				}
				testkit.Eventually(t, 20*time.Second, "the outbox relayed and emptied", func() bool {
					n, err := h.store.OutboxLen(context.Background())
					return err == nil && n == 0
				})
				if r := h.metric(t, "apitosms_status_outbox_relayed_total", nil); r != requests {
					t.Errorf("relayed %v, want %d", r, requests)
				}
				in := h.reportedStream(t)
				fast := int(js.calls.Load())
				t.Logf("%d requests: %d fast-path publishes, %d stream messages (%d arrays)", requests, fast, in.messages, in.arrays)
				if !stored {
					if in.arrays != 0 || in.messages != requests {
						t.Errorf("stream holds %d messages (%d arrays), want the %d relayed singles", in.messages, in.arrays, requests)
					}
				} else if in.arrays == 0 || fast >= requests {
					t.Errorf("%d publishes for %d requests, %d arrays stored: the requests did not share messages", fast, requests, in.arrays)
				}
				// A stored single fast message shares its id with the
				// relay's publish (the stream keeps one); an array's
				// events come again one by one.
				for _, p := range hs {
					seqs := in.seqs[p]
					switch {
					case len(seqs) == 1 && !in.array[seqs[0]]:
					case len(seqs) == 2 && stored && in.array[seqs[0]] != in.array[seqs[1]]:
					default:
						t.Fatalf("position %d in messages %v (arrays %v)", p, seqs, in.array)
					}
				}
			})
		})
	}
}
