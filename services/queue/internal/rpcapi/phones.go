package rpcapi

import (
	"context"
	"time"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// Phones answers the phones list (contract §11) and stores the last-seen
// batches ingress flushes every few seconds.
type Phones struct {
	st           *store.Store
	offlineAfter time.Duration
	now          func() time.Time
}

// NewPhones returns the handlers; a phone is online when seen within
// offlineAfter.
func NewPhones(st *store.Store, offlineAfter time.Duration) *Phones {
	return &Phones{st: st, offlineAfter: offlineAfter, now: time.Now}
}

// Register serves the handlers on n's phone subjects.
func (p *Phones) Register(srv *rpc.Server, n events.Names) error {
	if err := rpc.Handle(srv, n.QueuePhonesSeen(), "phones-seen", p.Seen); err != nil {
		return err
	}
	return rpc.Handle(srv, n.QueuePhones(), "phones", p.List)
}

// Seen stores one ingress flush (never moving a time back).
func (p *Phones) Seen(ctx context.Context, req events.PhonesSeen) (events.PhonesSeenReply, error) {
	seen := make([]store.PhoneSeen, 0, len(req.Phones))
	for _, ph := range req.Phones {
		if ph.AccountID <= 0 || ph.Device == "" {
			continue
		}
		seen = append(seen, store.PhoneSeen{AccountID: ph.AccountID, Device: ph.Device, PullMs: millis(ph.PullAt), ReportMs: millis(ph.ReportAt)})
	}
	return events.PhonesSeenReply{}, p.st.SeePhones(ctx, seen)
}

// List answers the account's phones by device name. The day counters show
// 0 once their UTC day is over.
func (p *Phones) List(ctx context.Context, req events.PhonesRequest) (events.PhonesReply, error) {
	if req.AccountID <= 0 {
		return events.PhonesReply{}, errBadAccount
	}
	rows, err := p.st.Phones(ctx, req.AccountID)
	if err != nil {
		return events.PhonesReply{}, err
	}
	now := p.now()
	today := now.UTC().Format(time.DateOnly)
	out := events.PhonesReply{Phones: make([]events.Phone, 0, len(rows))}
	for _, r := range rows {
		ph := events.Phone{Device: r.Device, LastSeenAt: at(r.SeenMs), LastPullAt: at(r.PullMs), LastReportAt: at(r.ReportMs),
			Online: r.SeenMs > 0 && now.Sub(time.UnixMilli(r.SeenMs)) < p.offlineAfter}
		if r.Day == today {
			ph.SentToday, ph.FailedToday = r.SentToday, r.FailedToday
		}
		out.Phones = append(out.Phones, ph)
	}
	return out, nil
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func at(ms int64) *time.Time {
	if ms <= 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}
