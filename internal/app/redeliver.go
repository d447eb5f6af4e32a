package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
)

// redeliverOrphans makes the durable consumers of an embedded broker deliver
// again, now, what a previous run of this process had fetched and not
// acknowledged when it died.
//
// Such messages normally come back only after the consumer's AckWait (10 s),
// and until then every read that must see them (get_messages, status) waits
// and answers 503. With the embedded server the process owns the broker (the
// data dir is locked and the server accepts no outside clients), so every
// pending delivery belongs to a dead incarnation: resetting each consumer to
// its ack floor (JetStream's consumer reset, nats-server 2.14+) redelivers
// them at once. Messages acknowledged above the floor may come again; every
// handler is idempotent. With an external broker other live replicas may
// hold deliveries, so this is never done there; readiness waits instead
// (consumer.Startup).
func redeliverOrphans(ctx context.Context, js jetstream.JetStream, log *slog.Logger) error {
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		name := info.Config.Name
		s, err := js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		consumers := s.ListConsumers(ctx)
		for ci := range consumers.Info() {
			if ci.Config.Durable == "" || ci.NumAckPending == 0 {
				continue
			}
			if _, err := s.ResetConsumer(ctx, ci.Name); err != nil {
				return fmt.Errorf("reset consumer %s of %s: %w", ci.Name, name, err)
			}
			log.Info("redelivering what the previous run held", "stream", name, "consumer", ci.Name, "messages", ci.NumAckPending)
		}
		if err := consumers.Err(); err != nil {
			return fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	return streams.Err()
}
