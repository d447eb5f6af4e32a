// Package publish turns accepted items into AcceptedBatch events on the
// accepted stream: one JetStream message (one fsync on the server) per chunk
// of up to events.MaxItemsPerEvent items, never more than the server's max
// payload. A chunk's Nats-Msg-Id derives from the request id, so a publish
// retried after a lost acknowledgement is stored once (the stream answers
// the retry with the sequence it stored the first time). Publish returns
// each item's FIFO position, from which its public hash derives
// (libs/hashid).
package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/groupcommit"
)

// Publisher publishes accepted batches.
type Publisher struct {
	js         jetstream.JetStream
	subject    string
	maxPayload int
	shared     *groupcommit.Gatherer[shared] // small requests waiting to share a message (coalesce.go)
}

// New returns a publisher to subject; maxPayload is the server's limit
// (bytes). Shared publishes need Run.
func New(js jetstream.JetStream, subject string, maxPayload int64) *Publisher {
	mp := int(maxPayload)
	if mp <= 0 {
		mp = 1 << 20
	}
	p := &Publisher{js: js, subject: subject, maxPayload: mp - 4096}
	p.shared = groupcommit.NewGatherer(takeShared, p.publishGroup)
	return p
}

// NewRequestID returns a fresh random request id (32 hex characters): a
// request's publish ids derive from it.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Publish stores items durably, in order, and returns the FIFO position
// (events.Position) of each. It returns only when every chunk is
// acknowledged by the stream, or an error (some chunks may then be stored:
// a retry with the same requestID stores none twice and gets the same
// positions). When shareable, a small request may travel in one stream
// message with other requests' items (see coalesce.go).
func (p *Publisher) Publish(ctx context.Context, requestID string, at time.Time, items []events.AcceptedSMS, shareable bool) ([]int64, error) {
	if shareable && len(items) <= SharedMax {
		return p.publishShared(ctx, items)
	}
	return p.publish(ctx, requestID, at, items)
}

func (p *Publisher) publish(ctx context.Context, requestID string, at time.Time, items []events.AcceptedSMS) ([]int64, error) {
	chunks, err := p.encode(at, items)
	if err != nil {
		return nil, err
	}
	positions := make([]int64, 0, len(items))
	for i, c := range chunks {
		msg := nats.NewMsg(p.subject)
		msg.Data = c.data
		msg.Header.Set(jetstream.MsgIDHeader, requestID+"/"+strconv.Itoa(i))
		seq, err := p.publishOne(ctx, msg)
		if err != nil {
			return nil, err
		}
		for j := range c.items {
			positions = append(positions, events.Position(seq, j))
		}
	}
	return positions, nil
}

// publishOne publishes msg and returns the stream sequence it is stored at.
// Each attempt waits for the stream's acknowledgement at most the broker
// call timeout; an attempt that failed because the stream did not answer (a
// node died with the request, a leader election) is made once more with the
// same message, whose Nats-Msg-Id makes the stream store it once and answer
// the retry with the first sequence.
func (p *Publisher) publishOne(ctx context.Context, msg *nats.Msg) (uint64, error) {
	var seq uint64
	err := broker.Retry(ctx, func(ctx context.Context) error {
		ack, err := p.js.PublishMsg(ctx, msg)
		if err == nil {
			seq = ack.Sequence
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("publish accepted batch: %w", err)
	}
	return seq, nil
}

// chunk is one stream message's worth of items.
type chunk struct {
	data  []byte
	items int
}

// encode splits items into chunks that fit both limits, in order.
func (p *Publisher) encode(at time.Time, items []events.AcceptedSMS) ([]chunk, error) {
	var out []chunk
	var split func(part []events.AcceptedSMS) error
	split = func(part []events.AcceptedSMS) error {
		if len(part) > events.MaxItemsPerEvent {
			if err := split(part[:events.MaxItemsPerEvent]); err != nil {
				return err
			}
			return split(part[events.MaxItemsPerEvent:])
		}
		data, err := events.Marshal(events.AcceptedBatch{AcceptedAt: at, Items: part})
		if err != nil {
			return fmt.Errorf("encode accepted batch: %w", err)
		}
		if len(data) > p.maxPayload {
			if len(part) == 1 {
				return fmt.Errorf("one message exceeds the broker's max payload (%d bytes)", p.maxPayload)
			}
			half := len(part) / 2
			if err := split(part[:half]); err != nil {
				return err
			}
			return split(part[half:])
		}
		out = append(out, chunk{data: data, items: len(part)})
		return nil
	}
	if err := split(items); err != nil {
		return nil, err
	}
	return out, nil
}
