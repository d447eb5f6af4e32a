package httpapi

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/services/ingress/internal/metrics"
)

// Phones (contract §11). A phone is known by the device name of its pulls
// (get_messages?device=) and reports (status "device"). Seeing one costs no
// write: the time goes into an in-memory table, and every PhoneFlushInterval
// the table goes to the queue service in one request (events.PhonesSeen),
// which upserts one row per phone. A flush that fails is merged back and
// sent with the next one; what an ingress saw in its last interval before it
// died is lost (the phone is seen again at its next poll).

// PhoneFlushInterval is how often each ingress sends what it saw.
const PhoneFlushInterval = 2 * time.Second

// maxSeenPhones bounds the table between two flushes; a device first seen
// while it is full is dropped (counted) until the next flush.
const maxSeenPhones = 100_000

type phoneKey struct {
	account int64
	device  string
}

// phoneTable is what one ingress saw since its last flush.
type phoneTable struct {
	mu      sync.Mutex
	seen    map[phoneKey]*events.PhoneSeen
	dropped prometheus.Counter
	flushes prometheus.Counter
	failed  prometheus.Counter
}

func newPhoneTable(m *metrics.Metrics) *phoneTable {
	return &phoneTable{seen: map[phoneKey]*events.PhoneSeen{},
		dropped: m.PhonesDropped, flushes: m.PhoneFlushes, failed: m.PhoneFlushFailures}
}

// see records that account's phone device pulled (pull) or reported at at.
func (t *phoneTable) see(account int64, device string, pull bool, at time.Time) {
	if device == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.seen[phoneKey{account, device}]
	if p == nil {
		if len(t.seen) >= maxSeenPhones {
			t.dropped.Inc()
			return
		}
		// A copy: fiber's strings (c.Query) point into buffers it reuses.
		device = strings.Clone(device)
		p = &events.PhoneSeen{AccountID: account, Device: device}
		t.seen[phoneKey{account, device}] = p
	}
	if pull && at.After(p.PullAt) {
		p.PullAt = at
	}
	if !pull && at.After(p.ReportAt) {
		p.ReportAt = at
	}
}

// take empties the table and returns what it held.
func (t *phoneTable) take() []events.PhoneSeen {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.seen) == 0 {
		return nil
	}
	out := make([]events.PhoneSeen, 0, len(t.seen))
	for _, p := range t.seen {
		out = append(out, *p)
	}
	clear(t.seen)
	return out
}

// putBack merges a batch that could not be sent.
func (t *phoneTable) putBack(batch []events.PhoneSeen) {
	for _, p := range batch {
		if !p.PullAt.IsZero() {
			t.see(p.AccountID, p.Device, true, p.PullAt)
		}
		if !p.ReportAt.IsZero() {
			t.see(p.AccountID, p.Device, false, p.ReportAt)
		}
	}
}

// maxPhonesPerFlush bounds one PhonesSeen request (well within a NATS
// message: a sighting takes under 100 bytes).
const maxPhonesPerFlush = 5000

// flush sends what the table holds to the queue service.
func (a *API) flushPhones(ctx context.Context) {
	batch := a.phones.take()
	for rest := batch; len(rest) > 0; {
		n := min(len(rest), maxPhonesPerFlush)
		_, err := rpc.Call[events.PhonesSeen, events.PhonesSeenReply](ctx, a.nc, a.names.QueuePhonesSeen(), events.PhonesSeen{Phones: rest[:n]})
		if err != nil {
			a.phones.failed.Inc()
			a.phones.putBack(rest)
			if ctx.Err() == nil {
				a.log.Warn("phone sightings not stored; sent again with the next flush", "phones", len(rest), "err", err)
			}
			return
		}
		a.phones.flushes.Inc()
		rest = rest[n:]
	}
}

// RunPhones flushes the phones seen every PhoneFlushInterval until ctx ends,
// then tries once more (bounded by timeout); what that last flush cannot
// deliver (the queue service stopping too) is lost, and the phones' next
// polls replace it.
func (a *API) RunPhones(ctx context.Context, timeout time.Duration) {
	t := time.NewTicker(PhoneFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			defer cancel()
			a.flushPhones(last)
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, a.set.RequestTimeout)
			a.flushPhones(fctx)
			cancel()
		}
	}
}

// phoneJSON is a phone as contract §11 shows it.
type phoneJSON struct {
	Device       string         `json:"device"`
	LastSeenAt   timestamp.Time `json:"lastSeenAt"`
	LastPullAt   timestamp.Time `json:"lastPullAt"`
	LastReportAt timestamp.Time `json:"lastReportAt"`
	SentToday    int64          `json:"sentToday"`
	FailedToday  int64          `json:"failedToday"`
	Online       bool           `json:"online"`
}

type phonesResponse struct {
	Phones []phoneJSON `json:"phones"`
}

// listPhones answers GET /api/{token}/phones (read window).
func (a *API) listPhones(c *fiber.Ctx) error {
	ctx, cancel := a.timeout(c)
	defer cancel()
	auth, err := a.authenticateRead(ctx, c)
	if err != nil {
		return err
	}
	res, err := rpc.Call[events.PhonesRequest, events.PhonesReply](ctx, a.nc, a.names.QueuePhones(), events.PhonesRequest{AccountID: auth.AccountID})
	if err != nil {
		return err
	}
	out := phonesResponse{Phones: make([]phoneJSON, len(res.Phones))}
	for i, p := range res.Phones {
		out.Phones[i] = phoneJSON{Device: p.Device, LastSeenAt: ts(p.LastSeenAt), LastPullAt: ts(p.LastPullAt), LastReportAt: ts(p.LastReportAt),
			SentToday: p.SentToday, FailedToday: p.FailedToday, Online: p.Online}
	}
	return c.JSON(out)
}

func ts(t *time.Time) timestamp.Time {
	if t == nil {
		return timestamp.Time{}
	}
	return timestamp.Time{Time: *t}
}
