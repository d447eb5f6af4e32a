package events

import "time"

// The web console (services/console) reads and writes through the other
// services' requests only. Billing answers these for it (group billing);
// every request names the account the console signed in.

// BillingAccount: AccountRequest -> AccountReply.
func (n Names) BillingAccount() string { return n.rpc("billing.v1.account") }

// BillingAccounts: AccountsRequest -> AccountsReply.
func (n Names) BillingAccounts() string { return n.rpc("billing.v1.accounts") }

// BillingRotateToken: AccountRequest -> TokenReply.
func (n Names) BillingRotateToken() string { return n.rpc("billing.v1.rotate-token") }

// ConsoleSessionsBucket holds the console's sessions (KV, TTL = session
// lifetime), shared by every console replica.
func (n Names) ConsoleSessionsBucket() string { return n.stream + "_CONSOLE_SESSIONS" }

// ConsoleThrottleBucket counts failed console sign-ins per account and per
// client address (KV, TTL = the throttle window).
func (n Names) ConsoleThrottleBucket() string { return n.stream + "_CONSOLE_THROTTLE" }

// AccountRequest names one account. Errors: account_not_found (404).
type AccountRequest struct {
	AccountID int64 `json:"accountId"`
}

// AccountReply describes an account, its subscription (Plan empty: none)
// and this month's usage.
type AccountReply struct {
	ID                 int64  `json:"id"`
	Name               string `json:"name"`
	Email              string `json:"email"`
	Plan               string `json:"plan,omitempty"`
	SubscriptionActive bool   `json:"subscriptionActive"`
	MonthlyLimit       int64  `json:"monthlyLimit"` // this month's limit: 0 without an active subscription
	RateLimitPerMinute int    `json:"rateLimitPerMinute"`
	Month              string `json:"month"`
	Used               int64  `json:"used"`
	// The subscription's dates (contract timestamps; empty: none, or no
	// subscription).
	StartedAt string `json:"startedAt,omitempty"`
	ExpiresAt string `json:"expiresAt,omitempty"`
	EndedAt   string `json:"endedAt,omitempty"`
	// History is the messages counted per month, newest first (at most
	// UsageMonths; months without a message absent). Only BillingAccount
	// fills it.
	History []MonthUsage `json:"history,omitempty"`
}

// UsageMonths bounds AccountReply.History.
const UsageMonths = 24

// MonthUsage is one month's count ("2026-12").
type MonthUsage struct {
	Month string `json:"month"`
	Used  int64  `json:"used"`
}

// AccountsRequest asks for up to Limit accounts with id above After,
// searched like GET /admin/v1/accounts (contract §14).
type AccountsRequest struct {
	Query string `json:"query,omitempty"`
	After int64  `json:"after,omitempty"`
	Limit int    `json:"limit"`
}

// AccountsReply is one page; Next is the After of the next page, 0 on the
// last.
type AccountsReply struct {
	Accounts []AccountReply `json:"accounts"`
	Next     int64          `json:"next,omitempty"`
}

// TokenReply carries a new API token: the only time it travels in full.
type TokenReply struct {
	APIToken string `json:"apiToken"`
}

// GroupConsole is the queue group of the console's handlers.
const GroupConsole = "console"

// ConsoleInvite: InviteRequest -> InviteReply. Billing serves
// POST /admin/v1/accounts/{id}/invite (contract §14) and asks the console,
// which owns merchant credentials, to make the link.
func (n Names) ConsoleInvite() string { return n.rpc("console.v1.invite") }

// InviteRequest asks for a one-time link for the account's merchant.
type InviteRequest struct {
	AccountID int64  `json:"accountId"`
	Email     string `json:"email"`
}

// InviteReply is the link and when it expires (UTC).
type InviteReply struct {
	InviteURL string    `json:"inviteUrl"`
	ExpiresAt time.Time `json:"expiresAt"`
}
