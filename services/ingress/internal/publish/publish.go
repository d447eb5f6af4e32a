// Package publish turns accepted items into AcceptedBatch events on the
// accepted stream: one JetStream message (one fsync on the server) per chunk
// of up to events.MaxItemsPerEvent items, never more than the server's max
// payload. A chunk's Nats-Msg-Id derives from the request id, so a publish
// retried after a lost acknowledgement is stored once.
package publish

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
)

// Publisher publishes accepted batches.
type Publisher struct {
	js         jetstream.JetStream
	subject    string
	maxPayload int
	shared     chan shared
}

// New returns a publisher to subject; maxPayload is the server's limit
// (bytes). Shared publishes need Run.
func New(js jetstream.JetStream, subject string, maxPayload int64) *Publisher {
	mp := int(maxPayload)
	if mp <= 0 {
		mp = 1 << 20
	}
	return &Publisher{js: js, subject: subject, maxPayload: mp - 4096, shared: make(chan shared, 4096)}
}

// NewRequestID returns a fresh random request id (32 hex characters): a
// request's message hashes and publish ids derive from it.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Hash is the public hash of item index of the request requestID: 16
// lower-case hex characters, unpredictable without the random request id.
func Hash(requestID string, index int) string {
	sum := sha256.Sum256([]byte(requestID + ":" + strconv.Itoa(index)))
	return hex.EncodeToString(sum[:8])
}

// Publish stores items durably, in order. It returns only when every chunk
// is acknowledged by the stream, or an error (some chunks may then be
// stored: a retry with the same requestID stores none twice). When
// shareable, a small request may travel in one stream message with other
// requests' items (see coalesce.go).
func (p *Publisher) Publish(ctx context.Context, requestID string, at time.Time, items []events.AcceptedSMS, shareable bool) error {
	if shareable && len(items) <= SharedMax {
		return p.publishShared(ctx, items)
	}
	return p.publish(ctx, requestID, at, items)
}

func (p *Publisher) publish(ctx context.Context, requestID string, at time.Time, items []events.AcceptedSMS) error {
	chunks, err := p.encode(at, items)
	if err != nil {
		return err
	}
	for i, data := range chunks {
		msg := nats.NewMsg(p.subject)
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, requestID+"/"+strconv.Itoa(i))
		if err := p.publishOne(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) publishOne(ctx context.Context, msg *nats.Msg) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = p.js.PublishMsg(ctx, msg); err == nil {
			return nil
		}
		if ctx.Err() != nil || !retryable(err) {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	return fmt.Errorf("publish accepted batch: %w", err)
}

func retryable(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// encode splits items into chunks that fit both limits.
func (p *Publisher) encode(at time.Time, items []events.AcceptedSMS) ([][]byte, error) {
	var out [][]byte
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
		out = append(out, data)
		return nil
	}
	if err := split(items); err != nil {
		return nil, err
	}
	return out, nil
}
