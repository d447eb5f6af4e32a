package events

// BillingAccountChanged is the subject billing broadcasts an AccountChanged
// on (core NATS, no stream) after a change that can make a cached token
// lookup wrong: a rotated token, a subscription put or ended, usage given
// back. Every ingress replica subscribes (no queue group) and drops what it
// cached for the account.
func (n Names) BillingAccountChanged() string { return n.ns + ".billing.v1.account-changed" }

// AccountChanged names the account whose token lookup changed.
type AccountChanged struct {
	AccountID int64 `json:"accountId"`
}
