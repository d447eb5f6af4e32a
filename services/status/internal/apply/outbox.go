package apply

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/services/status/internal/metrics"
	"github.com/apitosms/apitosms/services/status/internal/store"
)

// The transactional outbox (at-least-once from status to queue). A request
// that changes statuses writes its ReportedBatch into reported_outbox in
// the same transaction as the changes, so the event exists exactly when the
// changes do. After the commit it is published on the fast path, in one
// message with the events of the requests committed with it (coalesce.go;
// the reply still waits for the stream's acknowledgement, as before), with
// Nats-Msg-Id "status-outbox-<id>" when alone, "status-outbox-<first
// id>+<more>-<digest of the ids>" when not. The published ids are deleted in
// batches, inside the next group-commit transaction (no commit of their
// own while reports flow) or by the relay's tick when idle. Whatever a
// failed publish or a crash left behind, the relay finds (rows older than
// OutboxAge, so it never races a request's own publish) and publishes
// again; the message id makes the stream store a publish that did arrive
// only once within its duplicate window, and the queue applies a repeated
// ReportedBatch as a no-op beyond it.
type relay struct {
	st      *store.Store
	js      jetstream.JetStream
	subject string
	metrics *metrics.Metrics
	log     *slog.Logger

	mu   sync.Mutex
	done []int64 // published, not deleted yet
}

// relayBatch bounds the events one relay pass reads and publishes.
const relayBatch = 256

func newRelay(st *store.Store, js jetstream.JetStream, names events.Names, m *metrics.Metrics, log *slog.Logger) *relay {
	return &relay{st: st, js: js, subject: names.ReportedSubject(), metrics: m, log: log}
}

// MsgID is the Nats-Msg-Id of outbox event id.
func MsgID(id int64) string { return "status-outbox-" + strconv.FormatInt(id, 10) }

// takeDone hands over the ids published since the last call; a caller
// whose delete fails gives them back (putBack, which also adds newly
// published ones).
func (r *relay) takeDone() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.done
	r.done = nil
	return ids
}

func (r *relay) putBack(ids []int64) {
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	r.done = append(r.done, ids...)
	r.mu.Unlock()
}

// flush deletes the published ids in a transaction of its own.
func (r *relay) flush(ctx context.Context) {
	ids := r.takeDone()
	if len(ids) == 0 {
		return
	}
	if err := r.st.DeleteOutbox(ctx, ids); err != nil {
		r.putBack(ids)
		r.log.Warn("delete published outbox events failed; retrying later", "events", len(ids), "err", err)
	}
}

// pass publishes the events older than age that are not known to be
// published, in one asynchronous batch, and returns how many it published.
func (r *relay) pass(ctx context.Context, age time.Duration) (int, error) {
	pending, err := r.st.PendingOutbox(ctx, time.Now().Add(-age), relayBatch)
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	r.mu.Lock()
	pending = slices.DeleteFunc(pending, func(o store.Outboxed) bool { return slices.Contains(r.done, o.ID) })
	r.mu.Unlock()
	for i := range pending {
		ev, err := decodeOutbox(pending[i].Payload)
		if err == nil {
			pending[i].Payload, err = events.Marshal(ev)
		}
		if err != nil {
			// Poison: no retry can publish it. Drop it, loudly.
			r.log.Error("dropping an unreadable reported outbox event", "event", pending[i].ID, "err", err)
			r.putBack([]int64{pending[i].ID})
			pending[i].Payload = nil
		}
	}
	pending = slices.DeleteFunc(pending, func(o store.Outboxed) bool { return o.Payload == nil })
	futures := make([]jetstream.PubAckFuture, 0, len(pending))
	var published []int64
	var firstErr error
	for _, ev := range pending {
		f, err := r.js.PublishAsync(r.subject, ev.Payload, jetstream.WithMsgID(MsgID(ev.ID)))
		if err != nil {
			firstErr = err
			break
		}
		futures = append(futures, f)
	}
	wait, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	for i, f := range futures {
		select {
		case <-f.Ok():
			published = append(published, pending[i].ID)
		case err := <-f.Err():
			if firstErr == nil {
				firstErr = err
			}
		case <-wait.Done():
			if firstErr == nil {
				firstErr = wait.Err()
			}
		}
	}
	r.putBack(published)
	if firstErr != nil {
		r.metrics.PublishFailures.Add(float64(len(pending) - len(published)))
	}
	r.metrics.OutboxRelayed.Add(float64(len(published)))
	return len(published), firstErr
}

// run relays the outbox every interval until ctx is done, then deletes
// what was published meanwhile (bounded by stop's deadline).
func (r *relay) run(ctx context.Context, interval, age time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := r.pass(ctx, age)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("relaying the reported outbox failed; retrying", "relayed", n, "err", err)
		} else if n > 0 {
			r.log.Info("relayed reported events left by a failed publish or a stopped process", "events", n)
		}
		r.flush(ctx)
	}
}
