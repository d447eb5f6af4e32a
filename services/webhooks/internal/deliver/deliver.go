// Package deliver POSTs undelivered events to their endpoints, per Standard
// Webhooks v1, driven from the database: a dispatcher finds endpoints with
// events due, claims events under a lease (so a crashed process's events come
// due again by themselves), sends them on bounded workers and records each
// attempt: delivered rows are deleted, failed ones rescheduled with
// exponential back-off and jitter.
//
// Fairness: each endpoint has at most PerEndpoint POSTs in flight and every
// POST has a timeout, so a slow or dead endpoint holds at most PerEndpoint
// workers while every other endpoint's events keep flowing.
package deliver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apitosms/apitosms/libs/keys"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/services/webhooks/internal/guard"
	"github.com/apitosms/apitosms/services/webhooks/internal/metrics"
	"github.com/apitosms/apitosms/services/webhooks/internal/secret"
	"github.com/apitosms/apitosms/services/webhooks/internal/store"
)

// Config tunes delivery.
type Config struct {
	PerEndpoint  int             // most POSTs in flight per endpoint (per process)
	Workers      int             // most POSTs in flight in all
	Timeout      time.Duration   // one POST, connection to answer
	Schedule     []time.Duration // waits before retry 1, 2, ...; the last repeats
	DisableAfter time.Duration   // an endpoint failing this long is disabled
	BatchSize    int             // most events per POST to a batch endpoint
	Poll         time.Duration   // look for due events at least this often
}

// DefaultSchedule is the retry schedule: the first retry after about 5 s,
// then 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (27 h 36 min in all), then
// every 10 h until delivered or the endpoint is disabled. Each wait is
// jittered by ±20%.
var DefaultSchedule = []time.Duration{
	5 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// leaseMargin is added to the timeout: a claimed event is not claimed again
// before its POST has surely ended.
const leaseMargin = 5 * time.Second

// Dispatcher runs deliveries.
type Dispatcher struct {
	cfg     Config
	store   *store.Store
	sealer  *keys.Sealer
	client  *http.Client
	metrics *metrics.Metrics
	log     *slog.Logger

	wake     chan struct{}
	results  chan result // outcomes waiting to be recorded (group commit)
	mu       sync.Mutex
	inflight map[string]int // POSTs in flight by endpoint
	// wanted: endpoints a round left work for (due rows it found no slot
	// for, or claimed to capacity): only their finished POSTs call for
	// another round. Cleared at the start of each round.
	wanted map[string]bool
	total  int
	closed bool // Run is ending: no more hand-offs
	wg     sync.WaitGroup
}

// New returns a dispatcher; g decides which addresses may be dialled.
func New(cfg Config, st *store.Store, sealer *keys.Sealer, g *guard.Guard, m *metrics.Metrics, log *slog.Logger) *Dispatcher {
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = DefaultSchedule
	}
	cfg.PerEndpoint = max(cfg.PerEndpoint, 1)
	cfg.Workers = max(cfg.Workers, cfg.PerEndpoint)
	cfg.BatchSize = max(cfg.BatchSize, 1)
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	return &Dispatcher{
		cfg: cfg, store: st, sealer: sealer, client: g.Client(cfg.Timeout, cfg.PerEndpoint),
		metrics: m, log: log, wake: make(chan struct{}, 1), inflight: map[string]int{}, wanted: map[string]bool{},
		results: make(chan result, cfg.Workers),
	}
}

// Wake asks for a look at due events now (new events were stored).
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx is done, then waits for the POSTs in flight
// (each bounded by the timeout) and returns.
func (d *Dispatcher) Run(ctx context.Context) {
	recorded := make(chan struct{})
	go func() { d.record(); close(recorded) }()
	defer func() {
		d.mu.Lock()
		d.closed = true // Offer reserves no more (its reservations are in wg)
		d.mu.Unlock()
		d.wg.Wait() // every POST has handed in its outcome
		close(d.results)
		<-recorded
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
		if err := d.round(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("webhook dispatch", "err", err)
		}
		timer.Reset(d.cfg.Poll)
	}
}

// free returns how many more POSTs an endpoint with due rows may start now;
// when none, it marks the endpoint wanted (in the same lock as done reads
// it), so the next of its POSTs to end calls for a round.
func (d *Dispatcher) free(endpoint string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := min(d.cfg.PerEndpoint-d.inflight[endpoint], d.cfg.Workers-d.total)
	if n <= 0 {
		d.wanted[endpoint] = true
	}
	return n
}

// want marks an endpoint as having (perhaps) more due rows than its slots
// took: its next finished POST calls for a round.
func (d *Dispatcher) want(endpoint string) {
	d.mu.Lock()
	d.wanted[endpoint] = true
	d.mu.Unlock()
}

// round claims due events of every endpoint with room and starts their POSTs.
func (d *Dispatcher) round(ctx context.Context) error {
	now := time.Now()
	d.mu.Lock()
	clear(d.wanted)
	d.mu.Unlock()
	ids, err := d.store.DueEndpoints(ctx, store.Ms(now), 1000)
	if err != nil {
		return err
	}
	open := ids[:0]
	for _, id := range ids {
		if d.free(id) > 0 {
			open = append(open, id)
		}
	}
	if len(open) == 0 {
		return nil
	}
	eps, err := d.store.Endpoints(ctx, open)
	if err != nil {
		return err
	}
	for _, id := range open {
		ep, ok := eps[id]
		if !ok || !ep.Enabled {
			continue
		}
		slots := d.free(id)
		if slots <= 0 {
			continue
		}
		target, err := d.target(ep, now)
		if err != nil {
			d.log.Error("webhook endpoint unusable", "endpoint", id, "err", err)
			continue
		}
		per := 1
		if ep.Batch {
			per = d.cfg.BatchSize
		}
		lease := now.Add(d.cfg.Timeout + leaseMargin)
		rows, err := d.store.Claim(ctx, id, store.Ms(now), store.Ms(lease), slots, per)
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			d.want(id) // more may be due than this claim took
		}
		for _, group := range store.Group(rows, per) {
			d.start(id)
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				defer d.done(id)
				d.send(context.WithoutCancel(ctx), target, group)
			}()
		}
	}
	return nil
}

// Offer reserves up to posts POST slots of endpoint for rows the fan-out is
// about to store (the hand-off: the rows are written already claimed, until
// the returned lease, and sent from memory once committed, with no look for
// due rows, no claim transaction and no payload read). It leaves one of the
// endpoint's slots to the database path, so events already waiting (retries,
// rows beyond the reserved POSTs) are never starved by new ones, and reserves
// nothing once Run is ending. Each reserved slot must be given back through
// Handoff.
func (d *Dispatcher) Offer(endpoint string, posts int) (int, time.Time) {
	lease := time.Now().Add(d.cfg.Timeout + leaseMargin)
	d.mu.Lock()
	defer d.mu.Unlock()
	n := min(posts, d.cfg.PerEndpoint-1-d.inflight[endpoint], d.cfg.Workers-d.total)
	if n <= 0 || d.closed {
		return 0, lease
	}
	d.inflight[endpoint] += n
	d.total += n
	d.wg.Add(n)
	return n, lease
}

// Handoff sends the rows of the slots Offer reserved for ep: one POST per
// group, the groups as Group splits them, every row stored by the caller
// with attempts 1 and next_attempt_ms at lease. An empty group (its rows
// were stored already, or not at all) gives its slot back unused. Rows whose
// POST cannot start well within the lease (a slow commit) are left to come
// due when it ends, as a crashed process's would.
func (d *Dispatcher) Handoff(ctx context.Context, ep store.Endpoint, groups [][]store.Delivery, lease time.Time) {
	now := time.Now()
	t, err := d.target(ep, now)
	if err != nil {
		d.log.Error("webhook endpoint unusable", "endpoint", ep.ID, "err", err)
	}
	ok := err == nil && lease.Sub(now) > d.cfg.Timeout+leaseMargin/2
	for _, group := range groups {
		if !ok || len(group) == 0 {
			d.done(ep.ID)
			d.wg.Done()
			continue
		}
		d.metrics.Handoffs.Inc()
		go func() {
			defer d.wg.Done()
			defer d.done(ep.ID)
			d.send(context.WithoutCancel(ctx), t, group)
		}()
	}
}

func (d *Dispatcher) start(endpoint string) {
	d.mu.Lock()
	d.inflight[endpoint]++
	d.total++
	d.mu.Unlock()
}

// done gives an endpoint's slot back. It calls for a round only when the
// last one left due rows of this endpoint waiting for a slot, or when all
// workers were busy: a hand-off POST ending with nothing waiting costs no
// look at the database (the poll and the fan-out's own wake-ups cover
// everything else).
func (d *Dispatcher) done(endpoint string) {
	d.mu.Lock()
	if d.inflight[endpoint]--; d.inflight[endpoint] <= 0 {
		delete(d.inflight, endpoint)
	}
	full := d.total >= d.cfg.Workers
	d.total--
	wanted := d.wanted[endpoint] || full
	d.mu.Unlock()
	if wanted {
		d.Wake() // a slot is free for waiting rows
	}
}

// target is what one POST needs of its endpoint.
type target struct {
	id    string
	url   string
	batch bool
	keys  [][]byte // current secret first; the previous one during the overlap
}

func (d *Dispatcher) target(ep store.Endpoint, now time.Time) (target, error) {
	t := target{id: ep.ID, url: ep.URL, batch: ep.Batch}
	cur, err := d.sealer.Open(ep.Secret, nil)
	if err != nil {
		return t, err
	}
	k, err := secret.Key(cur)
	if err != nil {
		return t, err
	}
	t.keys = append(t.keys, k)
	if ep.OldSecret != "" && ep.OldSecretUntilMs > store.Ms(now) {
		old, err := d.sealer.Open(ep.OldSecret, nil)
		if err != nil {
			return t, err
		}
		if k, err := secret.Key(old); err == nil {
			t.keys = append(t.keys, k)
		}
	}
	return t, nil
}

// Body builds the body and webhook-id of one POST: a single event's own
// payload, or for a batch endpoint {"type":"batch","timestamp","data":{"events":[...]}}
// whose id is "batch_" + the first 32 hex digits of SHA-256 over the event
// ids in order (a retry of the same events carries the same id).
func Body(batch bool, rows []store.Delivery, now time.Time) (id, typ string, body []byte) {
	if !batch && rows[0].IDs == "" {
		return rows[0].EventID, rows[0].Type, []byte(rows[0].Payload)
	}
	h := sha256.New()
	var b bytes.Buffer
	size := 64
	for _, r := range rows {
		size += len(r.Payload) + len(r.EventID) + 16
	}
	b.Grow(size)
	b.WriteString(`{"type":"batch","timestamp":"`)
	b.WriteString(timestamp.Format(now))
	b.WriteString(`","data":{"events":[`)
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
			h.Write([]byte{','})
		}
		if r.IDs != "" { // a chunk: its items are ready
			h.Write([]byte(r.IDs))
			b.WriteString(r.Payload)
			continue
		}
		h.Write([]byte(r.EventID))
		b.WriteString(`{"id":`)
		b.WriteString(strconv.Quote(r.EventID))
		b.WriteByte(',')
		b.WriteString(r.Payload[1:]) // {"type",...} without its opening brace
	}
	b.WriteString(`]}}`)
	return "batch_" + hex.EncodeToString(h.Sum(nil))[:32], "batch", b.Bytes()
}

// Signature is the webhook-signature header: one v1 signature per key.
func Signature(keys [][]byte, id string, ts int64, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = secret.Sign(k, id, ts, body)
	}
	return strings.Join(sigs, " ")
}

// send POSTs one event or one batch and records the outcome.
func (d *Dispatcher) send(ctx context.Context, t target, rows []store.Delivery) {
	now := time.Now()
	id, typ, body := Body(t.batch, rows, now)
	ts := now.Unix()
	attempt := 0
	for _, r := range rows {
		attempt = max(attempt, r.Attempts)
	}

	status, err := d.post(ctx, t, id, ts, body)
	took := time.Since(now)
	d.metrics.Latency.Observe(took.Seconds())

	events := 0
	for _, r := range rows {
		events += max(r.Events, 1)
	}
	a := &store.Attempt{
		EndpointID: t.id, WebhookID: id, Type: typ, Events: events, Attempt: attempt,
		DurationMs: took.Milliseconds(), AtMs: store.Ms(time.Now()),
	}
	if status != 0 {
		a.ResponseStatus = &status
	}
	outcome := metrics.OutcomeFailed
	switch {
	case err != nil:
		if errors.Is(err, guard.ErrBlocked) {
			outcome = metrics.OutcomeBlocked
		}
		msg := describe(err)
		a.Error = &msg
	case status >= 200 && status < 300:
		outcome = metrics.OutcomeDelivered
	case status == http.StatusGone:
		outcome = metrics.OutcomeGone
		msg := "410 Gone: endpoint disabled"
		a.Error = &msg
	default:
		msg := fmt.Sprintf("HTTP %d", status)
		a.Error = &msg
	}
	d.metrics.Deliveries.WithLabelValues(outcome).Inc()

	o := store.Outcome{Attempt: a, IDs: make([]int64, len(rows))}
	for i, r := range rows {
		o.IDs[i] = r.ID
	}
	switch outcome {
	case metrics.OutcomeDelivered:
		a.Delivered, o.Delivered = true, true
	case metrics.OutcomeGone:
		o.Gone, o.NextAttemptMs = true, store.Ms(time.Now()) // due again if re-enabled
	default:
		// The events of one POST are retried together, by the schedule of
		// the most-tried one.
		o.NextAttemptMs = store.Ms(time.Now().Add(d.Backoff(attempt)))
	}
	// Handed to the recorder; the slot is given back without waiting for
	// the commit: the POST's rows stay leased until it is recorded (well
	// within the lease), so nothing can claim them meanwhile. Run waits for
	// every outcome to be recorded before it returns.
	d.results <- result{out: o, events: events}
}

// result is one POST's outcome on its way to the database.
type result struct {
	out    store.Outcome
	events int
}

// maxGroup bounds the outcomes recorded in one transaction.
const maxGroup = 64

// recordWindow is how long the recorder gathers outcomes after the first
// one of a group before it writes them, in one transaction (on SQLite each
// commit is an fsync on the one connection): POSTs that end a few
// milliseconds apart (a drain's chunks, about one every 10 ms) share a
// commit instead of paying one each. Nothing waits for it but the log and
// the removal of delivered rows, which stay leased meanwhile; a process
// that dies within it sends those events again after the lease (at least
// once, same webhook-id).
const recordWindow = 20 * time.Millisecond

// record writes outcomes as they come, those of one window (up to maxGroup)
// in one transaction, until results is closed; then it writes what it has
// and returns.
func (d *Dispatcher) record() {
	outs := make([]store.Outcome, 0, maxGroup)
	window := time.NewTimer(recordWindow)
	defer window.Stop()
	for first := range d.results {
		outs = append(outs[:0], first.out)
		events := []int{first.events}
		window.Reset(recordWindow)
	more:
		for len(outs) < maxGroup {
			select {
			case r, ok := <-d.results:
				if !ok {
					break more
				}
				outs, events = append(outs, r.out), append(events, r.events)
			case <-window.C:
				break more
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		disabled, err := d.store.Record(ctx, outs, d.cfg.DisableAfter)
		cancel()
		if err != nil {
			// The leases run out and the events are sent again: a
			// duplicate with the same webhook-id, never a loss.
			d.log.Error("record webhook attempts", "posts", len(outs), "err", err)
		} else {
			for i, o := range outs {
				if o.Delivered {
					d.metrics.Events.Add(float64(events[i]))
				}
			}
		}
		for id, reason := range disabled {
			d.metrics.Disabled.WithLabelValues(reason).Inc()
			d.log.Warn("webhook endpoint disabled", "endpoint", id, "reason", reason)
		}
	}
}

// Backoff is the wait after the attempts-th failed attempt, jittered ±20%.
func (d *Dispatcher) Backoff(attempts int) time.Duration {
	i := min(max(attempts-1, 0), len(d.cfg.Schedule)-1)
	base := d.cfg.Schedule[i]
	return time.Duration(float64(base) * (0.8 + 0.4*rand.Float64())) //nolint:gosec // G404: jitter, not a secret
}

// post sends the request and returns the answer's status.
func (d *Dispatcher) post(ctx context.Context, t target, id string, ts int64, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "apitosms-webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Signature(t.keys, id, ts, body))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	return resp.StatusCode, nil
}

// describe turns a client error into a sentence for the deliveries log,
// without the URL (which may carry a merchant's credentials in its query).
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, guard.ErrBlocked):
		return "destination address is not public"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
