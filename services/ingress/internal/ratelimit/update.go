package ratelimit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// directKV is the bucket with its compare-and-set (Update) made directly: one
// request to the key's subject carrying the expected revision, whose
// acknowledgement is read without reflection. nats.go's Update decodes the
// acknowledgement with encoding/json and checks the key with a regular
// expression: together half of the write's CPU, which is once a request (a
// tenth of ingress's share of one-message requests). The request, the
// stream's check of the revision and the errors are the same as
// jetstream's: a wrong revision is an *jetstream.APIError wrapping
// jetstream.ErrKeyRevisionMismatch, no responders go through nats.go's own
// Update (which retries them), a lost answer is nats.go's timeout or the
// context's error.
type directKV struct {
	jetstream.KeyValue
	nc  *nats.Conn
	pre string // "$KV.<bucket>.": the bucket's subjects (a bucket of this account, not a mirror)
}

func newDirectKV(kv jetstream.KeyValue, nc *nats.Conn) *directKV {
	return &directKV{KeyValue: kv, nc: nc, pre: "$KV." + kv.Bucket() + "."}
}

// Update stores value under key if the key's last revision is last, and
// returns the new revision.
func (k *directKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	m := &nats.Msg{Subject: k.pre + key, Header: nats.Header{}, Data: value}
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
	resp, err := k.nc.RequestMsgWithContext(ctx, m)
	if errors.Is(err, nats.ErrNoResponders) {
		// The stream has no leader this instant: nats.go's Update waits
		// and retries, as every other write of the bucket does.
		return k.KeyValue.Update(ctx, key, value, last)
	}
	if err != nil {
		return 0, err
	}
	return parseAck(resp.Data)
}

// parseAck returns the sequence of a JetStream publish acknowledgement, or
// its error. The usual answer, {"stream":"KV_x","seq":N} (with a "domain"
// between them when the server has one), is read by hand; anything else is
// decoded as nats.go decodes it.
func parseAck(data []byte) (uint64, error) {
	const head = `{"stream":"`
	if bytes.HasPrefix(data, []byte(head)) && len(data) > len(head) && data[len(head)] != '"' &&
		!bytes.Contains(data, []byte(`"error"`)) {
		if i := bytes.Index(data, []byte(`"seq":`)); i > 0 {
			rest := data[i+len(`"seq":`):]
			n := 0
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			if n > 0 && n < len(rest) && (rest[n] == ',' || rest[n] == '}') {
				if seq, err := strconv.ParseUint(string(rest[:n]), 10, 64); err == nil {
					return seq, nil
				}
			}
		}
	}
	var ack struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
		Seq    uint64              `json:"seq"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return 0, jetstream.ErrInvalidJSAck
	}
	if ack.Error != nil {
		if ack.Error.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			ack.Error.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant {
			return 0, fmt.Errorf("nats: %w: %w", ack.Error, jetstream.ErrKeyRevisionMismatch)
		}
		return 0, fmt.Errorf("nats: %w", ack.Error)
	}
	if ack.Stream == "" {
		return 0, jetstream.ErrInvalidJSAck
	}
	return ack.Seq, nil
}
