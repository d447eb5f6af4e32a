// Package domain holds billing's rules: when a subscription is active and how
// a reservation is taken from a monthly quota.
package domain

import (
	"net/http"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
)

// DefaultRateLimitPerMinute applies when an account has no subscription or
// its subscription sets none (contract §1).
const DefaultRateLimitPerMinute = 60

// Errors billing answers with, shaped as in the contract.
var (
	ErrAccountNotFound      = apperr.New(http.StatusNotFound, "account_not_found", "Account not found")
	ErrSubscriptionNotFound = apperr.New(http.StatusNotFound, "subscription_not_found", "No subscription")
)

// Account is a customer owning one API token (only its digest is stored).
type Account struct {
	ID        int64
	Name      string
	Email     string
	CreatedAt time.Time
}

// Subscription is an account's plan. Zero ExpiresAt means it never expires;
// non-zero EndedAt means an operator ended it.
type Subscription struct {
	Plan               string
	MonthlyLimit       int64
	RateLimitPerMinute int
	ExpiresAt          time.Time
	StartedAt          time.Time
	EndedAt            time.Time
}

// Active reports whether s grants sending at now: not ended and not expired.
func (s Subscription) Active(now time.Time) bool {
	return s.EndedAt.IsZero() && (s.ExpiresAt.IsZero() || s.ExpiresAt.After(now))
}

// RateLimit is the requests-per-minute allowance of an account holding sub
// (nil: none), whether or not it is active.
func RateLimit(sub *Subscription) int {
	if sub == nil || sub.RateLimitPerMinute < 1 {
		return DefaultRateLimitPerMinute
	}
	return sub.RateLimitPerMinute
}

// Limit is the monthly quota granted by sub at now: its limit while active,
// else 0.
func Limit(sub *Subscription, now time.Time) int64 {
	if sub == nil || !sub.Active(now) {
		return 0
	}
	return sub.MonthlyLimit
}

// Reservation asks for Count messages of an account's quota this month.
type Reservation struct {
	AccountID int64
	Count     int
}

// Grant is the outcome of one Reservation. Used and Limit are the counters
// after it; Err is set (ErrAccountNotFound) when nothing could be considered.
type Grant struct {
	Granted            int
	Used               int64
	Limit              int64
	Month              string
	SubscriptionActive bool
	Err                error
	// Crossed names the quota events this reservation fired (QuotaWarning,
	// QuotaExhausted bits): it took usage across 80% of the limit, or to it.
	Crossed int
}

// Quota event bits (usage.events_fired, usage.events_due).
const (
	QuotaWarning   = 1 // usage reached WarningPercent of the limit
	QuotaExhausted = 2 // usage reached the limit
)

// WarningPercent is the share of the monthly limit whose use fires
// quota.warning.
const WarningPercent = 80

// QuotaCrossed returns the quota event bits that usage going from before to
// after crosses under limit: warning when it reaches 80% (rounded up), and
// exhausted when it reaches the limit. A limit of 0 fires nothing.
func QuotaCrossed(before, after, limit int64) int {
	if limit <= 0 || after <= before {
		return 0
	}
	bits := 0
	warn := (limit*WarningPercent + 99) / 100
	if before < warn && after >= warn {
		bits |= QuotaWarning
	}
	if before < limit && after >= limit {
		bits |= QuotaExhausted
	}
	return bits
}

// Take is how many of count fit between used and limit: min(count, limit-used),
// never negative.
func Take(used, limit int64, count int) int {
	left := limit - used
	if left <= 0 || count <= 0 {
		return 0
	}
	if int64(count) > left {
		return int(left)
	}
	return count
}
