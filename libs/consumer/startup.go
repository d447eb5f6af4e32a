package consumer

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// Startup tells when a process's consumers have caught up with what their
// streams held when it started. Until then a reader may have to wait for
// them: after a crash, a batch the dead process had in hand stays
// unacknowledged until the consumer's AckWait passes and JetStream delivers
// it again, and every read-your-writes wait (CatchUp) meanwhile answers
// unavailable. A readiness probe that says ready only after Startup.Ready
// keeps traffic away until reads are answered at once.
type Startup struct {
	gates []startGate
	ready atomic.Bool // sticky: once caught up, later lag is the CatchUp's business
}

type startGate struct {
	catchUp *CatchUp
	durable string
	target  uint64 // the stream's last sequence when the process started
}

// Watch names a durable consumer on a stream.
type Watch struct{ Stream, Durable string }

// NewStartup records, for each watched consumer (stream and durable must
// exist), the last sequence its stream holds now.
func NewStartup(ctx context.Context, js jetstream.JetStream, watch ...Watch) (*Startup, error) {
	s := &Startup{}
	for _, w := range watch {
		c, err := NewCatchUp(ctx, js, w.Stream, w.Durable, 0)
		if err != nil {
			return nil, err
		}
		info, err := c.stream.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", w.Stream, err)
		}
		s.gates = append(s.gates, startGate{catchUp: c, durable: w.Durable, target: info.State.LastSeq})
	}
	return s, nil
}

// Ready returns nil once every watched consumer has processed every message
// its stream held at NewStartup, and from then on; otherwise an error naming
// the first consumer still behind. Each call costs at most one consumer
// info request per consumer still behind.
func (s *Startup) Ready(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	for _, g := range s.gates {
		if g.catchUp.Floor() >= g.target {
			continue
		}
		info, err := g.catchUp.cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("consumer %s: %w", g.durable, err)
		}
		g.catchUp.raise(info.AckFloor.Stream)
		if floor := g.catchUp.Floor(); floor < g.target {
			return fmt.Errorf("consumer %s catching up: processed up to %d of %d stored before start", g.durable, floor, g.target)
		}
	}
	s.ready.Store(true)
	return nil
}
