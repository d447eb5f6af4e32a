package apply

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/groupcommit"
)

// Each status request used to publish its own ReportedBatch and wait for its
// acknowledgement: one stream message, and on the embedded server one fsync,
// per request, stored one after the other, so under a phone fleet every
// report queued behind the others' fsyncs (status p50 1.5 s at ~600
// requests/s). The coalescer publishes the events of requests that committed
// together (a group commit, commit.go) as one message, and while a publish
// is in flight the groups committing meanwhile gather for the next one
// (no added delay when idle). Each request still replies only once the
// message holding its event is acknowledged (read-your-writes for what
// follows the report). A failed publish fails each of its requests' publish
// alone: their events stay in the outbox and the relay publishes them
// (one by one, under their own message ids); should the failed message have
// been stored after all, the queue applies the repeats as no-ops.

// maxCombinedItems bounds the reports of one combined message: the queue's
// reported consumer applies up to APITOSMS_QUEUE_REPORTED_BATCH messages in
// one transaction, which this keeps about as large as with accepted batches.
const maxCombinedItems = 2 * events.MaxItemsPerEvent

// headerRoom is what a combined message leaves of the server's max payload
// for its headers (the message id).
const headerRoom = 4096

// ticket is one committed event waiting for its publish.
type ticket struct {
	id      int64  // outbox id
	payload []byte // the ReportedBatch's JSON
	items   int
	done    chan error // the publish's outcome; buffered
}

type coalescer struct {
	relay    *relay
	maxBytes int
	g        *groupcommit.Gatherer[*ticket]
}

// newCoalescer starts loops publishing loops (1 on the embedded server: a
// second publish in flight only waits behind the first for its fsync).
func newCoalescer(r *relay, loops, maxPayload int) *coalescer {
	c := &coalescer{relay: r, maxBytes: maxPayload - headerRoom}
	if maxPayload <= headerRoom {
		c.maxBytes = 1<<20 - headerRoom // NATS's default max payload
	}
	c.g = groupcommit.NewGatherer(c.take, c.publish)
	c.g.Start(loops)
	return c
}

// enqueue hands over the events of one committed group, together: they go
// in one message unless it would exceed the bounds. After close their
// requests learn that nothing was published (the events stay in the outbox
// for the relay).
func (c *coalescer) enqueue(ts []*ticket) {
	if c.g.Add(ts...) {
		return
	}
	for _, t := range ts {
		t.done <- errClosed
	}
}

// errClosed is the publish outcome of events handed over after close.
var errClosed = errors.New("status publisher closed")

// close publishes what is queued and stops the loops.
func (c *coalescer) close() { c.g.Close() }

// take says how many of the waiting events, in order, one message holds (at
// least one).
func (c *coalescer) take(waiting []*ticket) int {
	size, items, n := 2, 0, 0
	for _, t := range waiting {
		size += len(t.payload) + 1
		items += t.items
		if n > 0 && (size > c.maxBytes || items > maxCombinedItems) {
			break
		}
		n++
	}
	return n
}

// publish publishes batch as one message and tells each event's request
// the outcome; on success the events are deleted later (relay.done).
func (c *coalescer) publish(batch []*ticket) {
	payloads := make([][]byte, len(batch))
	ids := make([]int64, len(batch))
	for i, t := range batch {
		payloads[i], ids[i] = t.payload, t.id
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	_, err := c.relay.js.Publish(ctx, c.relay.subject, events.ReportedMessage(payloads),
		jetstream.WithMsgID(combinedMsgID(ids)))
	cancel()
	if err == nil {
		c.relay.metrics.ReportedMessages.Inc()
		c.relay.putBack(ids)
	}
	for _, t := range batch {
		t.done <- err
	}
}

// combinedMsgID is the Nats-Msg-Id of a message holding the outbox events
// ids: MsgID for one, which the relay's publish of that event shares; for
// several, one derived from all of them (first id, count and a digest), the
// same for the same combination.
func combinedMsgID(ids []int64) string {
	if len(ids) == 1 {
		return MsgID(ids[0])
	}
	h := sha256.New()
	var b [binary.MaxVarintLen64]byte
	for _, id := range ids {
		h.Write(b[:binary.PutVarint(b[:], id)])
	}
	return MsgID(ids[0]) + "+" + strconv.Itoa(len(ids)-1) + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}
