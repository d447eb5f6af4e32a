package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
)

// Every delivery alone would cost one fsync on the server (the streams sync
// every write). Deliveries arriving while a publish is in flight gather and
// go in the next stream message together (group commit, no added delay
// when idle); each request is still answered only once its delivery is
// acknowledged. A delivery larger than sharedMaxBody goes alone.

const (
	sharedMaxBody  = 64 << 10  // larger deliveries are published alone
	sharedMaxBytes = 512 << 10 // bodies per shared message (base64 in JSON: under 1 MiB)
	sharedMaxHooks = 256
)

type pendingHook struct {
	hook events.StoreHook
	done chan published
}

type published struct {
	dup bool // the stream already held this delivery (published alone)
	err error
}

// Run runs n coalescing loops until ctx is done; then it publishes what is
// still waiting and returns.
func (h *Hooks) Run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { h.coalesce(ctx) })
	}
	wg.Wait()
}

func (h *Hooks) coalesce(ctx context.Context) {
	var group []pendingHook
	for {
		var first pendingHook
		select {
		case first = <-h.shared:
		case <-ctx.Done():
			select {
			case first = <-h.shared:
			default:
				return
			}
		}
		group = append(group[:0], first)
		size := len(first.hook.Body)
	gather:
		for len(group) < sharedMaxHooks && size < sharedMaxBytes-sharedMaxBody {
			select {
			case next := <-h.shared:
				group = append(group, next)
				size += len(next.hook.Body)
			default:
				break gather
			}
		}
		dup, err := h.publishGroup(context.WithoutCancel(ctx), group)
		for _, g := range group {
			g.done <- published{dup: dup, err: err}
		}
	}
}

func (h *Hooks) publishGroup(ctx context.Context, group []pendingHook) (dup bool, err error) {
	if len(group) == 1 {
		return h.publishOne(ctx, group[0].hook)
	}
	hooks := make([]events.StoreHook, len(group))
	for i, g := range group {
		hooks[i] = g.hook
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	msg, err := h.names.StoreHookBatchMsg(hex.EncodeToString(b[:]), hooks)
	if err != nil {
		return false, err
	}
	return false, broker.Retry(ctx, func(ctx context.Context) error {
		_, err := h.js.PublishMsg(ctx, msg)
		return err
	})
}

// publishOne stores one delivery in its own message (Nats-Msg-Id from its
// delivery id) and reports whether the stream already held it.
func (h *Hooks) publishOne(ctx context.Context, hook events.StoreHook) (dup bool, err error) {
	msg := h.names.StoreHookMsg(hook)
	err = broker.Retry(ctx, func(ctx context.Context) error {
		ack, err := h.js.PublishMsg(ctx, msg)
		if err == nil {
			dup = ack.Duplicate
		}
		return err
	})
	return dup, err
}

// store hands a delivery to the coalescer (or publishes a large one alone)
// and waits for it to be acknowledged. Once handed over it may be stored,
// so the outcome is awaited even if the caller's deadline passes.
func (h *Hooks) store(ctx context.Context, hook events.StoreHook) (dup bool, err error) {
	if len(hook.Body) > sharedMaxBody {
		return h.publishOne(ctx, hook)
	}
	p := pendingHook{hook: hook, done: make(chan published, 1)}
	select {
	case h.shared <- p:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	r := <-p.done
	return r.dup, r.err
}
