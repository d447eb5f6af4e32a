package events

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
)

// Topology says how streams are stored.
type Topology struct {
	Replicas int // stream replicas in a cluster; 1 for one server
}

// consumerConfig is the one shape of every durable consumer: explicit acks,
// everything from the start of the stream. Poison messages are handled by the
// consumer runner (libs/consumer), so the server redelivers without limit.
func consumerConfig(durable string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// A batch delivered to a process that died is redelivered after AckWait;
		// until then read-your-writes waits (and may answer 503) on it.
		AckWait:       10 * time.Second,
		MaxAckPending: 20000,
		MaxDeliver:    -1,
	}
}

// EnsureStreams creates or updates every stream of the namespace together with
// the durable consumers that read it. Streams use interest retention: a
// message stays until each durable declared here acked it, and since the
// durables are created with the stream, nothing published is ever dropped for
// lack of a reader. It is safe to call from any number of processes at the
// same moment: each step is a create-or-update that retries, with every
// attempt bounded, until it succeeds or ctx ends (broker.Ensure), so
// processes racing on a fresh cluster or namespace all end up with the same
// streams instead of waiting on requests the cluster left unanswered.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, n Names, t Topology) error {
	replicas := t.Replicas
	if replicas < 1 {
		replicas = 1
	}
	streams := []struct {
		cfg      jetstream.StreamConfig
		durables []string
		// limitsMayStay: an existing stream with limits retention that the
		// server cannot switch (before nats-server 2.10) keeps it.
		limitsMayStay bool
	}{
		{
			cfg: jetstream.StreamConfig{
				Name:       n.AcceptedStream(),
				Subjects:   []string{n.AcceptedSubject()},
				Storage:    jetstream.FileStorage,
				Retention:  jetstream.InterestPolicy,
				Replicas:   replicas,
				Duplicates: 2 * time.Minute,
				Discard:    jetstream.DiscardNew,
			},
			durables: []string{DurableQueueIngest, DurableStatusIngest},
		},
		{
			cfg: jetstream.StreamConfig{
				Name:       n.ReportedStream(),
				Subjects:   []string{n.ReportedSubject()},
				Storage:    jetstream.FileStorage,
				Retention:  jetstream.InterestPolicy,
				Replicas:   replicas,
				Duplicates: 2 * time.Minute,
				Discard:    jetstream.DiscardNew,
			},
			durables: []string{DurableQueueReported},
		},
		{
			// Webhook events: interest retention, so an event waits for the
			// webhooks service (durable webhooks-fanout) up to NotifyRetention
			// and leaves the stream once the fan-out stored it. (Limits
			// retention, before, kept 7 days of events, and the broker kept
			// the last seconds' 8 MB blocks in memory: in the all-in-one
			// process they pushed the Go heap to its soft limit during a
			// drain with webhooks. An existing stream is switched on start;
			// the broker then drops only what the durable acknowledged.)
			cfg: jetstream.StreamConfig{
				Name:       n.NotifyStream(),
				Subjects:   []string{n.NotifySubjects()},
				Storage:    jetstream.FileStorage,
				Retention:  jetstream.InterestPolicy,
				MaxAge:     NotifyRetention,
				Replicas:   replicas,
				Duplicates: 2 * time.Minute,
			},
			durables:      []string{DurableWebhooksFanout},
			limitsMayStay: true,
		},
		{
			// Verified shop deliveries (§13), until the stores service
			// processed them.
			cfg: jetstream.StreamConfig{
				Name:       n.StoreHooksStream(),
				Subjects:   []string{n.StoreHooksSubject()},
				Storage:    jetstream.FileStorage,
				Retention:  jetstream.InterestPolicy,
				Replicas:   replicas,
				Duplicates: 2 * time.Minute,
				Discard:    jetstream.DiscardNew,
			},
			durables: []string{DurableStoresIngest},
		},
		{
			cfg: jetstream.StreamConfig{
				Name:     n.DeadLetterStream(),
				Subjects: []string{n.DeadLetterSubjects()},
				Storage:  jetstream.FileStorage,
				Replicas: replicas,
				MaxAge:   14 * 24 * time.Hour,
			},
		},
	}
	for _, s := range streams {
		_, err := broker.EnsureStream(ctx, js, s.cfg)
		if err != nil && s.limitsMayStay && retentionRefused(err) {
			// Delivery is the same either way; only the memory and disk
			// the switch saves are not saved on such a server.
			kept := s.cfg
			kept.Retention = jetstream.LimitsPolicy
			_, err = broker.EnsureStream(ctx, js, kept)
		}
		if err != nil {
			return err
		}
		for _, d := range s.durables {
			if _, err := broker.EnsureConsumer(ctx, js, s.cfg.Name, consumerConfig(d)); err != nil {
				return err
			}
		}
	}
	return nil
}

// retentionRefused reports a server's refusal to change an existing stream's
// retention (nats-server before 2.10: "stream configuration update can not
// change retention policy", error 10052).
func retentionRefused(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == 10052 &&
		strings.Contains(apiErr.Description, "retention")
}
