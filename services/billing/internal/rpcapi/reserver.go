package rpcapi

import (
	"context"
	"time"

	"github.com/apitosms/apitosms/libs/groupcommit"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
	"github.com/apitosms/apitosms/services/billing/internal/store"
)

// Reserver applies reservations arriving together in one transaction (group
// commit), in arrival order, each caller getting its own grant: the results
// are those of applying them one by one.
type Reserver struct {
	b *groupcommit.Batcher[*reservation]
}

// reservation is one caller's job: one reservation (Reserve) or several in
// order (ReserveMany, ingress's coalesced requests), with a grant each.
type reservation struct {
	rs  []domain.Reservation
	gs  []domain.Grant
	err error
}

// NewReserver starts a reserver over st: up to size callers per
// transaction, each transaction bounded by timeout; observe (may be nil)
// learns each transaction's reservations. Close stops it.
//
// Quota events the batch fired are published with q right after the commit,
// before the callers get their grants; one that cannot be published stays
// due for q's relay.
func NewReserver(st *store.Store, q *QuotaEvents, size int, timeout time.Duration, observe func(int)) *Reserver {
	var rs []domain.Reservation // only the batcher's goroutine uses it
	return &Reserver{b: groupcommit.New(size, func(ctx context.Context, batch []*reservation) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		rs = rs[:0]
		for _, p := range batch {
			rs = append(rs, p.rs...)
		}
		if observe != nil {
			observe(len(rs))
		}
		grants, err := st.ReserveBatch(ctx, time.Now(), rs)
		if err == nil {
			if evs := fromGrants(rs, grants); len(evs) > 0 {
				// Bounded: the batch's callers wait for it; the relay retries.
				pctx, cancel := context.WithTimeout(ctx, quotaPublishWait)
				perr := q.Publish(pctx, evs)
				cancel()
				if perr != nil && q != nil {
					q.log.Warn("publish quota events failed; the relay retries", "err", perr)
				}
			}
		}
		for _, p := range batch {
			if err != nil {
				p.err = err
				continue
			}
			p.gs, grants = grants[:len(p.rs):len(p.rs)], grants[len(p.rs):]
		}
	}, nil)}
}

// quotaPublishWait bounds publishing a batch's quota events before its
// callers get their grants.
const quotaPublishWait = 2 * time.Second

// Reserve applies r with the reservations arriving at the same moment. It
// fails with ctx's error if ctx ends before r was handed over, and with
// apperr.ErrUnavailable after Close.
func (r *Reserver) Reserve(ctx context.Context, res domain.Reservation) (domain.Grant, error) {
	gs, err := r.ReserveMany(ctx, []domain.Reservation{res})
	if err != nil {
		return domain.Grant{}, err
	}
	return gs[0], gs[0].Err
}

// ReserveMany applies rs, in order, with the reservations arriving at the
// same moment: one grant per reservation, as if each were reserved alone in
// that order; a reservation that met an error alone (an unknown account)
// has it in its Grant.Err. The error is the transaction's: no grant then.
func (r *Reserver) ReserveMany(ctx context.Context, rs []domain.Reservation) ([]domain.Grant, error) {
	p := &reservation{rs: rs}
	if err := r.b.Do(ctx, p); err != nil {
		return nil, err
	}
	return p.gs, p.err
}

// Close stops taking reservations after the batch in hand.
func (r *Reserver) Close() { r.b.Close() }
