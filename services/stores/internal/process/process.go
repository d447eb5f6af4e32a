// Package process turns stored shop deliveries (the store-hooks stream) into
// queued SMS, at most once per order, event and recipient:
//
//  1. the delivery is recorded (store_deliveries); one already done is a
//     duplicate (the platform retried) and sends nothing;
//  2. the body is parsed; a malformed one is logged as rejected;
//  3. each SMS it calls for claims its send record (store, order, template,
//     recipient). A record owned by another delivery is a duplicate; one
//     this delivery owns is resumed where a crash left it;
//  4. quota is reserved through billing (the API's path) once, the month
//     recorded, then the SMS is published to the accepted stream under a
//     Nats-Msg-Id derived from the send record, so a retry after a crash
//     stores it once and gets back the same position (hence hash);
//  5. the decisions are logged and the delivery marked done, together.
//
// A store deleted before step 4's publish sends nothing.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/stores/internal/metrics"
	"github.com/apitosms/apitosms/services/stores/internal/orders"
	"github.com/apitosms/apitosms/services/stores/internal/phone"
	"github.com/apitosms/apitosms/services/stores/internal/rpcapi"
	"github.com/apitosms/apitosms/services/stores/internal/store"
	"github.com/apitosms/apitosms/services/stores/internal/templates"
)

// Decisions of the log.
const (
	Queued    = "queued"
	Skipped   = "skipped"
	Duplicate = "duplicate"
	Rejected  = "rejected"
)

// Processor handles batches of the store-hooks stream.
type Processor struct {
	st       *store.Store
	nc       *nats.Conn
	js       jetstream.JetStream
	names    events.Names
	hashes   *hashid.Codec
	m        *metrics.Metrics
	log      *slog.Logger
	parallel int
}

// New returns a processor handling up to parallel deliveries of a batch at once.
func New(st *store.Store, nc *nats.Conn, js jetstream.JetStream, names events.Names, hashes *hashid.Codec,
	m *metrics.Metrics, log *slog.Logger, parallel int) *Processor {
	return &Processor{st: st, nc: nc, js: js, names: names, hashes: hashes, m: m, log: log, parallel: max(parallel, 1)}
}

// Handle processes a batch; it returns nil only when every delivery's
// decisions are durable. Deliveries are independent: they run in parallel,
// and the send records keep two deliveries of one order from both sending.
func (p *Processor) Handle(ctx context.Context, batch []jetstream.Msg) error {
	sem := make(chan struct{}, p.parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, msg := range batch {
		hook, err := events.ParseStoreHook(msg)
		if err != nil {
			// Not something the receiving endpoint wrote: nothing to do.
			p.log.Warn("store hook unreadable; dropped", "err", err)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := p.one(ctx, hook); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func (p *Processor) one(ctx context.Context, h events.StoreHook) error {
	c, err := p.st.ByID(ctx, h.StoreID)
	if errors.Is(err, store.ErrNotFound) {
		p.log.Info("store hook for a deleted store; nothing sent", "store", h.StoreID, "topic", h.Topic)
		p.m.Decisions.WithLabelValues(Skipped).Inc()
		return nil
	}
	if err != nil {
		return err
	}
	now := store.Ms(time.Now())
	done, err := p.st.SeeDelivery(ctx, c.ID, h.DeliveryID, now)
	if err != nil {
		return err
	}
	entry := func(decision, reason string) store.LogEntry {
		return store.LogEntry{StoreID: c.ID, DeliveryID: h.DeliveryID, Topic: h.Topic, Decision: decision, Reason: reason, AtMs: now}
	}
	if done {
		p.m.Decisions.WithLabelValues(Duplicate).Inc()
		return p.st.Finish(ctx, c.ID, h.DeliveryID, []store.LogEntry{entry(Duplicate, "delivery already processed")})
	}
	ev, err := orders.Parse(c.Platform, h.Topic, h.Body)
	if err != nil {
		p.log.Info("store hook rejected", "store", c.ID, "topic", h.Topic, "err", err)
		p.m.Decisions.WithLabelValues(Rejected).Inc()
		return p.st.Finish(ctx, c.ID, h.DeliveryID, []store.LogEntry{entry(Rejected, clip(err.Error(), 200))})
	}
	o := ev.Order
	if o.ID != "" {
		if err := p.remember(ctx, c.ID, &o, now); err != nil {
			return err
		}
	}
	if ev.Key == "" {
		e := entry(Skipped, ev.Why)
		e.OrderNumber = o.Number
		p.m.Decisions.WithLabelValues(Skipped).Inc()
		return p.st.Finish(ctx, c.ID, h.DeliveryID, []store.LogEntry{e})
	}
	cf := rpcapi.Decode(c)
	type want struct{ key, recipient, sendKey, raw string }
	wants := []want{{key: ev.Key, recipient: "customer", sendKey: o.ID + ":" + ev.Key + ":customer", raw: pick(o, cf.PhoneFrom)}}
	if ev.Admin {
		for _, ph := range cf.AdminPhones {
			wants = append(wants, want{key: templates.AdminNewOrder, recipient: "admin",
				sendKey: o.ID + ":" + templates.AdminNewOrder + ":" + ph, raw: ph})
		}
	}
	var entries []store.LogEntry
	for _, w := range wants {
		e := entry("", "")
		e.Event, e.OrderNumber, e.Recipient = w.key, o.Number, w.recipient
		decision, reason, hash, err := p.send(ctx, c, cf, h.DeliveryID, w.key, w.sendKey, w.raw, o)
		if err != nil {
			return err
		}
		e.Decision, e.Reason, e.Hash = decision, reason, hash
		p.m.Decisions.WithLabelValues(decision).Inc()
		entries = append(entries, e)
	}
	return p.st.Finish(ctx, c.ID, h.DeliveryID, entries)
}

// remember merges what is known of the order into o and stores the result.
func (p *Processor) remember(ctx context.Context, storeID string, o *orders.Order, now int64) error {
	prev, err := p.st.RecallOrder(ctx, storeID, o.ID)
	if err != nil {
		return err
	}
	if prev != "" {
		var po orders.Order
		if json.Unmarshal([]byte(prev), &po) == nil {
			o.Merge(po)
		}
	}
	b, _ := json.Marshal(o)
	if string(b) == prev {
		return nil
	}
	return p.st.RememberOrder(ctx, storeID, o.ID, string(b), now)
}

// pick returns the customer's phone: the first non-empty of the store's
// phoneFrom order, then the order's own phone field.
func pick(o orders.Order, from []string) string {
	for _, f := range append(append([]string(nil), from...), "order") {
		if v := o.Phones[f]; v != "" {
			return v
		}
	}
	return ""
}

// send makes one SMS's decision and, when it is to be sent, queues it.
func (p *Processor) send(ctx context.Context, c store.Conn, cf rpcapi.Conf, delivery, key, sendKey, raw string, o orders.Order) (decision, reason, hash string, err error) {
	t := cf.Templates[key]
	if !t.Enabled {
		return Skipped, "template " + key + " disabled", "", nil
	}
	if raw == "" {
		return Skipped, "no phone on the order", "", nil
	}
	e164, ok := phone.E164(raw, c.DefaultCountry)
	if !ok {
		return Skipped, "unparseable phone", "", nil
	}
	out, err := p.st.OptedOut(ctx, c.AccountID, e164)
	if err != nil {
		return "", "", "", err
	}
	if out {
		return Skipped, "phone opted out", "", nil
	}
	text := rpcapi.Render(t.Text, o, c.Name)
	if text == "" {
		return Skipped, "template rendered empty", "", nil
	}
	now := store.Ms(time.Now())
	rec, err := p.st.ClaimSend(ctx, c.ID, sendKey, delivery, now)
	if err != nil {
		return "", "", "", err
	}
	if rec.DeliveryID != delivery {
		if rec.State == store.SendQueued {
			return Duplicate, "already sent for this order and event", rec.Hash, nil
		}
		return Duplicate, "another delivery of this order and event " + rec.State, rec.Hash, nil
	}
	switch rec.State {
	case store.SendQueued:
		return Queued, "", rec.Hash, nil // a retry of this delivery after a crash
	case store.SendSkipped:
		return Skipped, "monthly limit reached or no active subscription", "", nil
	}
	if rec.Month == "" {
		res, err := rpc.Call[events.ReserveRequest, events.ReserveReply](ctx, p.nc, p.names.BillingReserve(),
			events.ReserveRequest{AccountID: c.AccountID, Count: 1})
		if err != nil {
			return "", "", "", fmt.Errorf("reserve: %w", err)
		}
		if !res.SubscriptionActive || res.Granted == 0 {
			rec.State = store.SendSkipped
			if err := p.st.SetSend(ctx, rec); err != nil {
				return "", "", "", err
			}
			if !res.SubscriptionActive {
				return Skipped, "no active subscription", "", nil
			}
			return Skipped, "monthly limit reached", "", nil
		}
		rec.Month = res.Month
		if err := p.st.SetSend(ctx, rec); err != nil {
			p.release(c.AccountID, res.Month)
			return "", "", "", err
		}
	}
	// Deleted while this delivery was in flight: nothing is sent.
	if _, err := p.st.ByID(ctx, c.ID); errors.Is(err, store.ErrNotFound) {
		p.release(c.AccountID, rec.Month)
		return Skipped, "store deleted", "", nil
	} else if err != nil {
		return "", "", "", err
	}
	pos, err := p.publish(ctx, c, sendKey, e164, text)
	if err != nil {
		// The reservation stays recorded: the retry publishes under the
		// same id without reserving again.
		return "", "", "", err
	}
	rec.State, rec.Hash = store.SendQueued, p.hashes.Hash(pos)
	if err := p.st.SetSend(ctx, rec); err != nil {
		return "", "", "", err
	}
	return Queued, "", rec.Hash, nil
}

// publish stores the SMS in the accepted stream exactly as the queue
// endpoint does (one AcceptedBatch of one item) and returns its position.
func (p *Processor) publish(ctx context.Context, c store.Conn, sendKey, e164, text string) (int64, error) {
	data, err := events.Marshal(events.AcceptedBatch{AcceptedAt: time.Now().UTC(),
		Items: []events.AcceptedSMS{{AccountID: c.AccountID, Phone: e164, Text: text}}})
	if err != nil {
		return 0, err
	}
	msg := nats.NewMsg(p.names.AcceptedSubject())
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, "store/"+c.ID+"/"+sendKey)
	var seq uint64
	err = broker.Retry(ctx, func(ctx context.Context) error {
		ack, err := p.js.PublishMsg(ctx, msg)
		if err == nil {
			seq = ack.Sequence
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("publish accepted: %w", err)
	}
	p.m.Queued.Inc()
	return events.Position(seq, 0), nil
}

func (p *Processor) release(account int64, month string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := rpc.Call[events.ReleaseRequest, events.ReleaseReply](ctx, p.nc, p.names.BillingRelease(),
		events.ReleaseRequest{AccountID: account, Count: 1, Month: month}); err != nil {
		p.log.Warn("quota release failed; usage over-counted by one", "err", err)
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
