// Package ingest turns stored shop deliveries (the store-hooks stream) into
// queued SMS, at most once per order, event and recipient:
//
//  1. the delivery is recorded (store_deliveries); one already done is a
//     duplicate (the platform retried) and sends nothing;
//  2. the body is parsed; a malformed one is logged as rejected;
//  3. each SMS it calls for claims its send record (store, order, template,
//     recipient). A record owned by another delivery is a duplicate; one
//     this delivery owns is resumed where a crash left it;
//  4. quota is reserved through billing (the API's path) once, and the
//     month recorded;
//  5. the SMS is published to the accepted stream under a Nats-Msg-Id
//     derived from the send record, so a retry after a crash stores it once
//     and gets back the same position (hence hash);
//  6. the decisions are logged and the deliveries marked done, together.
//
// Steps 1-3, 4's record and 6 each take one transaction for the whole
// batch (on SQLite one fsync each), billing one request per account. A
// store deleted before step 5 sends nothing.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"

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
	st     *store.Store
	nc     *nats.Conn
	js     jetstream.JetStream
	names  events.Names
	hashes *hashid.Codec
	m      *metrics.Metrics
	log    *slog.Logger
}

// New returns a processor.
func New(st *store.Store, nc *nats.Conn, js jetstream.JetStream, names events.Names, hashes *hashid.Codec,
	m *metrics.Metrics, log *slog.Logger) *Processor {
	return &Processor{st: st, nc: nc, js: js, names: names, hashes: hashes, m: m, log: log}
}

// sms is one SMS a delivery calls for, through its decision.
type sms struct {
	conn  store.Conn
	hook  events.StoreHook
	entry store.LogEntry // decided when Decision is set
	rec   store.Send
	phone string
	text  string
}

// Handle processes a batch; it returns nil only when every delivery's
// decisions are durable. A failure leaves the batch to be redelivered,
// and every step resumes from what is recorded.
func (p *Processor) Handle(ctx context.Context, batch []jetstream.Msg) error {
	hooks := make([]events.StoreHook, 0, len(batch))
	ids := map[string]bool{}
	for _, msg := range batch {
		list, err := events.ParseStoreHooks(msg)
		if err != nil {
			p.log.Warn("store hook unreadable; dropped", "err", err)
			continue
		}
		for _, h := range list {
			if h.StoreID == "" || h.DeliveryID == "" {
				continue
			}
			hooks = append(hooks, h)
			ids[h.StoreID] = true
		}
	}
	conns, err := p.conns(ctx, ids)
	if err != nil {
		return err
	}
	now := store.Ms(time.Now())
	var all []*sms // every decision of the batch, in order
	var done []store.DeliveryRef
	err = p.st.Tx(ctx, func(ctx context.Context, tx bun.IDB) error {
		var err error
		all, done, err = p.decide(ctx, tx, hooks, conns, now)
		return err
	})
	if err != nil {
		return err
	}
	if err := p.reserve(ctx, all); err != nil {
		return err
	}
	others, err := p.publish(ctx, all)
	if err != nil {
		return err
	}
	entries := make([]store.LogEntry, 0, len(all))
	for _, s := range all {
		entries = append(entries, s.entry)
	}
	return p.st.Tx(ctx, func(ctx context.Context, tx bun.IDB) error {
		recs := others
		for _, s := range all {
			if s.entry.Decision == Queued && s.rec.State != store.SendQueued {
				r := s.rec
				r.State = store.SendQueued
				recs = append(recs, r)
			}
		}
		if err := store.SetSends(ctx, tx, recs); err != nil {
			return err
		}
		if err := store.Finish(ctx, tx, entries, done); err != nil {
			return err
		}
		for _, s := range all {
			p.m.Decisions.WithLabelValues(s.entry.Decision).Inc()
		}
		return nil
	})
}

func (p *Processor) conns(ctx context.Context, ids map[string]bool) (map[string]store.Conn, error) {
	out := make(map[string]store.Conn, len(ids))
	for id := range ids {
		c, err := p.st.ByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = c
	}
	return out, nil
}

// decide takes steps 1-3 for a batch (hooks in stream order): the SMS each
// delivery calls for, each decided or waiting for quota (entry.Decision
// empty), and the deliveries to mark done. It reads and writes the
// batch's rows a few statements at a time (store's batched operations);
// decisions are the same as taking the deliveries one by one in order.
func (p *Processor) decide(ctx context.Context, tx bun.IDB, hooks []events.StoreHook, conns map[string]store.Conn,
	now int64) ([]*sms, []store.DeliveryRef, error) {
	type item struct {
		c     store.Conn
		h     events.StoreHook
		again bool // the same delivery earlier in this batch
		ev    orders.Event
		out   []*sms // its decisions
	}
	items := make([]item, 0, len(hooks))
	refs := make([]store.DeliveryRef, 0, len(hooks))
	seen := map[store.DeliveryRef]bool{}
	for _, h := range hooks {
		c, ok := conns[h.StoreID]
		if !ok {
			p.log.Info("store hook for a deleted store; nothing sent", "store", h.StoreID, "topic", h.Topic)
			p.m.Decisions.WithLabelValues(Skipped).Inc()
			continue
		}
		ref := store.DeliveryRef{Store: c.ID, Delivery: h.DeliveryID}
		items = append(items, item{c: c, h: h, again: seen[ref]})
		refs = append(refs, ref)
		seen[ref] = true
	}
	// 1. Record the deliveries; those already done are duplicates.
	doneBefore, err := store.SeeDeliveries(ctx, tx, refs, now)
	if err != nil {
		return nil, nil, err
	}
	one := func(it *item, decision, reason string) {
		it.out = append(it.out, &sms{conn: it.c, hook: it.h, entry: store.LogEntry{StoreID: it.c.ID, DeliveryID: it.h.DeliveryID,
			Topic: it.h.Topic, AtMs: now, OrderNumber: it.ev.Order.Number, Decision: decision, Reason: reason}})
	}
	// 2. Parse; what is known of each order is merged in, in batch order.
	var known []store.OrderRef
	var live []*item
	for i := range items {
		it := &items[i]
		if doneBefore[refs[i]] || it.again {
			one(it, Duplicate, "delivery already processed")
			continue
		}
		ev, err := orders.Parse(it.c.Platform, it.h.Topic, it.h.Body)
		if err != nil {
			p.log.Info("store hook rejected", "store", it.c.ID, "topic", it.h.Topic, "err", err)
			one(it, Rejected, clip(err.Error(), 200))
			continue
		}
		it.ev = ev
		live = append(live, it)
		if ev.Order.ID != "" {
			known = append(known, store.OrderRef{Store: it.c.ID, Order: ev.Order.ID})
		}
	}
	memory, err := store.RecallOrders(ctx, tx, known)
	if err != nil {
		return nil, nil, err
	}
	var remembered []store.Order
	confs := map[string]rpcapi.Conf{}
	var waiting []*sms // past the checks that need no database
	for _, it := range live {
		o := &it.ev.Order
		if o.ID != "" {
			ref := store.OrderRef{Store: it.c.ID, Order: o.ID}
			prev := memory[ref]
			if prev != "" {
				var po orders.Order
				if json.Unmarshal([]byte(prev), &po) == nil {
					o.Merge(po)
				}
			}
			if b, _ := json.Marshal(o); string(b) != prev {
				memory[ref] = string(b)
				remembered = append(remembered, store.Order{StoreID: it.c.ID, OrderID: o.ID, Data: string(b), UpdatedMs: now})
			}
		}
		if it.ev.Key == "" {
			one(it, Skipped, it.ev.Why)
			continue
		}
		cf, ok := confs[it.c.ID]
		if !ok {
			cf = rpcapi.Decode(it.c)
			confs[it.c.ID] = cf
		}
		type want struct{ key, recipient, sendKey, raw string }
		wants := []want{{key: it.ev.Key, recipient: "customer", sendKey: o.ID + ":" + it.ev.Key + ":customer", raw: pick(*o, cf.PhoneFrom)}}
		if it.ev.Admin {
			for _, ph := range cf.AdminPhones {
				wants = append(wants, want{key: templates.AdminNewOrder, recipient: "admin",
					sendKey: o.ID + ":" + templates.AdminNewOrder + ":" + ph, raw: ph})
			}
		}
		for _, w := range wants {
			s := &sms{conn: it.c, hook: it.h, entry: store.LogEntry{StoreID: it.c.ID, DeliveryID: it.h.DeliveryID,
				Topic: it.h.Topic, AtMs: now, OrderNumber: o.Number, Event: w.key, Recipient: w.recipient}}
			it.out = append(it.out, s)
			t := cf.Templates[w.key]
			if reason := p.check(s, t, w.raw, *o); reason != "" {
				s.entry.Decision, s.entry.Reason = Skipped, reason
				continue
			}
			s.rec = store.Send{StoreID: it.c.ID, SendKey: w.sendKey, DeliveryID: it.h.DeliveryID}
			waiting = append(waiting, s)
		}
	}
	if err := store.RememberOrders(ctx, tx, remembered); err != nil {
		return nil, nil, err
	}
	// 3. Opt-outs, then the send records.
	phones := map[int64][]string{}
	for _, s := range waiting {
		phones[s.conn.AccountID] = append(phones[s.conn.AccountID], s.phone)
	}
	optedOut := map[int64]map[string]bool{}
	for account, list := range phones {
		if optedOut[account], err = store.OptedOut(ctx, tx, account, list); err != nil {
			return nil, nil, err
		}
	}
	claims := make([]store.Send, 0, len(waiting))
	claimed := waiting[:0]
	for _, s := range waiting {
		switch {
		case optedOut[s.conn.AccountID][s.phone]:
			s.entry.Decision, s.entry.Reason = Skipped, "phone opted out"
		case s.text == "":
			s.entry.Decision, s.entry.Reason = Skipped, "template rendered empty"
		default:
			claims = append(claims, s.rec)
			claimed = append(claimed, s)
		}
	}
	recs, err := store.ClaimSends(ctx, tx, claims, now)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range claimed {
		rec, ok := recs[store.SendRef{Store: s.rec.StoreID, Key: s.rec.SendKey}]
		if !ok {
			return nil, nil, fmt.Errorf("send record %s of store %s not claimed", s.rec.SendKey, s.rec.StoreID)
		}
		owner := s.rec.DeliveryID
		s.rec = rec
		decide := func(decision, reason, hash string) {
			s.entry.Decision, s.entry.Reason, s.entry.Hash = decision, reason, hash
		}
		switch {
		case rec.DeliveryID != owner && rec.State == store.SendQueued:
			decide(Duplicate, "already sent for this order and event", rec.Hash)
		case rec.DeliveryID != owner:
			decide(Duplicate, "another delivery of this order and event "+rec.State, rec.Hash)
		case rec.State == store.SendQueued:
			decide(Queued, "", rec.Hash) // a retry of this delivery after a crash
		case rec.State == store.SendSkipped:
			decide(Skipped, "monthly limit reached or no active subscription", "")
		}
		// otherwise waiting: quota, then publish
	}
	var all []*sms
	for _, it := range items {
		all = append(all, it.out...)
	}
	return all, refs, nil
}

// check takes the checks of one SMS that need no database: it returns why
// it is skipped, or "" with s.phone (E.164) and s.text (rendered) set.
func (p *Processor) check(s *sms, t templates.Template, raw string, o orders.Order) string {
	if !t.Enabled {
		return "template " + s.entry.Event + " disabled"
	}
	if raw == "" {
		return "no phone on the order"
	}
	e164, ok := phone.E164(raw, s.conn.DefaultCountry)
	if !ok {
		return "unparseable phone"
	}
	s.phone = e164
	s.text = rpcapi.Render(t.Text, o, s.conn.Name)
	return ""
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

// reserve takes step 4: quota for every waiting SMS without a reservation,
// one billing request per account (billing grants the first ones when
// fewer remain), recorded with the month before anything is published; the
// rest are skipped. A store deleted meanwhile gives its reservations back
// and sends nothing.
func (p *Processor) reserve(ctx context.Context, all []*sms) error {
	byAccount := map[int64][]*sms{}
	var stores []string
	for _, s := range all {
		if s.entry.Decision != "" {
			continue
		}
		stores = append(stores, s.conn.ID)
		if s.rec.Month == "" {
			byAccount[s.conn.AccountID] = append(byAccount[s.conn.AccountID], s)
		}
	}
	if len(stores) == 0 {
		return nil
	}
	type grant struct {
		account int64
		month   string
		n       int
	}
	var grants []grant
	for account, list := range byAccount {
		res, err := rpc.Call[events.ReserveRequest, events.ReserveReply](ctx, p.nc, p.names.BillingReserve(),
			events.ReserveRequest{AccountID: account, Count: len(list)})
		if err != nil {
			for _, g := range grants {
				p.release(g.account, g.month, g.n)
			}
			return fmt.Errorf("reserve: %w", err)
		}
		granted := res.Granted
		if !res.SubscriptionActive {
			granted = 0
		}
		grants = append(grants, grant{account, res.Month, granted})
		for i, s := range list {
			switch {
			case i < granted:
				s.rec.Month = res.Month
			case !res.SubscriptionActive:
				s.rec.State, s.entry.Decision, s.entry.Reason = store.SendSkipped, Skipped, "no active subscription"
			default:
				s.rec.State, s.entry.Decision, s.entry.Reason = store.SendSkipped, Skipped, "monthly limit reached"
			}
		}
	}
	placer := newPlacer()
	err := p.st.Tx(ctx, func(ctx context.Context, tx bun.IDB) error {
		placer.reset()
		live, err := store.Existing(ctx, tx, stores)
		if err != nil {
			return err
		}
		var recs []store.Send
		for _, s := range all {
			if s.entry.Decision == "" && !live[s.conn.ID] {
				// Deleted while in flight: nothing is sent.
				if s.rec.Month != "" {
					p.release(s.conn.AccountID, s.rec.Month, 1)
				}
				s.entry.Decision, s.entry.Reason = Skipped, "store deleted"
				continue
			}
			if s.entry.Decision == "" && s.rec.Grp == "" {
				s.rec.AccountID, s.rec.Phone, s.rec.Body = s.conn.AccountID, s.phone, s.text
				placer.place(&s.rec)
			}
			if s.rec.State == store.SendSkipped || s.entry.Decision == "" {
				recs = append(recs, s.rec)
			}
		}
		return store.SetSends(ctx, tx, recs)
	})
	if err != nil {
		for _, g := range grants {
			p.release(g.account, g.month, g.n)
		}
	}
	return err
}

// placer assigns waiting SMS to stream messages: up to MaxItemsPerEvent
// items and maxGroupBytes of text each, named by a fresh id.
type placer struct {
	base  string
	chunk int
	n     int
	bytes int
}

// maxGroupBytes keeps a stream message well under the broker's payload limit.
const maxGroupBytes = 512 << 10

func newPlacer() *placer {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return &placer{base: hex.EncodeToString(b[:])}
}

func (pl *placer) reset() { pl.chunk, pl.n, pl.bytes = 0, 0, 0 }

func (pl *placer) place(r *store.Send) {
	size := len(r.Body) + len(r.Phone) + 32
	if pl.n > 0 && (pl.n >= events.MaxItemsPerEvent || pl.bytes+size > maxGroupBytes) {
		pl.chunk, pl.n, pl.bytes = pl.chunk+1, 0, 0
	}
	r.Grp, r.Idx = pl.base+"-"+strconv.Itoa(pl.chunk), pl.n
	pl.n++
	pl.bytes += size
}

// publish takes step 5: the waiting SMS go to the accepted stream exactly
// as the queue endpoint sends them, grouped in AcceptedBatch messages
// (one fsync for many). Each message's Nats-Msg-Id is its group's id and
// its items are the group's records in place order, so after a crash the
// group is rebuilt from the database and republished as it was: the stream
// answers with the first sequence, and every SMS gets the same position
// (hash). Members of an old group that are not in this batch are marked
// queued too (returned, for the final transaction).
func (p *Processor) publish(ctx context.Context, all []*sms) ([]store.Send, error) {
	groups := map[string][]*sms{}
	var order []string
	for _, s := range all {
		if s.entry.Decision != "" {
			continue
		}
		if _, ok := groups[s.rec.Grp]; !ok {
			order = append(order, s.rec.Grp)
		}
		groups[s.rec.Grp] = append(groups[s.rec.Grp], s)
	}
	type pending struct {
		grp     string
		members []store.Send
		ack     jetstream.PubAckFuture
	}
	var list []pending
	at := time.Now().UTC()
	for _, grp := range order {
		members, err := store.Group(ctx, p.st.DB(), grp)
		if err != nil {
			return nil, err
		}
		items := make([]events.AcceptedSMS, len(members))
		for i, m := range members {
			if m.Idx != i {
				return nil, fmt.Errorf("send group %s: place %d holds %d", grp, i, m.Idx)
			}
			items[i] = events.AcceptedSMS{AccountID: m.AccountID, Phone: m.Phone, Text: m.Body}
		}
		data, err := events.Marshal(events.AcceptedBatch{AcceptedAt: at, Items: items})
		if err != nil {
			return nil, err
		}
		msg := nats.NewMsg(p.names.AcceptedSubject())
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, "store/"+grp)
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return nil, fmt.Errorf("publish accepted: %w", err)
		}
		list = append(list, pending{grp, members, f})
	}
	var others []store.Send
	for _, x := range list {
		var seq uint64
		select {
		case ack := <-x.ack.Ok():
			seq = ack.Sequence
		case err := <-x.ack.Err():
			return nil, fmt.Errorf("publish accepted: %w", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		inHand := map[string]bool{}
		for _, s := range groups[x.grp] {
			s.rec.Hash = p.hashes.Hash(events.Position(seq, s.rec.Idx))
			s.entry.Decision, s.entry.Hash = Queued, s.rec.Hash
			inHand[s.rec.SendKey+"\x00"+s.rec.StoreID] = true
			p.m.Queued.Inc()
		}
		for _, m := range x.members {
			if !inHand[m.SendKey+"\x00"+m.StoreID] && m.State != store.SendQueued {
				m.State, m.Hash = store.SendQueued, p.hashes.Hash(events.Position(seq, m.Idx))
				others = append(others, m)
			}
		}
	}
	return others, nil
}

func (p *Processor) release(account int64, month string, n int) {
	if n <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := rpc.Call[events.ReleaseRequest, events.ReleaseReply](ctx, p.nc, p.names.BillingRelease(),
		events.ReleaseRequest{AccountID: account, Count: n, Month: month}); err != nil {
		p.log.Warn("quota release failed; usage over-counted", "err", err, "count", n)
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
