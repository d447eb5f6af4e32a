package events

// Per-token settings of the hand-out lease (contract §12): ingress serves
// GET/PATCH /api/{token}/settings and asks the queue service, which owns
// them because it needs them at claim time.

// QueueSettingsGet: SettingsGetRequest -> Settings.
func (n Names) QueueSettingsGet() string { return n.rpc("queue.v1.settings-get") }

// QueueSettingsSet: SettingsSetRequest -> Settings.
func (n Names) QueueSettingsSet() string { return n.rpc("queue.v1.settings-set") }

// Lease expiry modes (Settings.OnLeaseExpiry).
const (
	LeaseRequeue = "requeue"
	LeaseExpire  = "expire"
)

// Settings are an account's hand-out lease settings. LeaseSeconds 0 (the
// default) means no lease: a handed-out message stays initiated until
// reported (Part 1).
type Settings struct {
	LeaseSeconds  int    `json:"leaseSeconds"`
	OnLeaseExpiry string `json:"onLeaseExpiry"`
	MaxAttempts   int    `json:"maxAttempts"`
}

// DefaultSettings are an account's settings until it changes them.
func DefaultSettings() Settings {
	return Settings{LeaseSeconds: 0, OnLeaseExpiry: LeaseRequeue, MaxAttempts: 3}
}

// SettingsGetRequest asks for an account's settings.
type SettingsGetRequest struct {
	AccountID int64 `json:"accountId"`
}

// SettingsSetRequest changes the fields that are set (nil: unchanged) and
// answers the settings as stored. The queue validates them (400
// invalid_settings with the field named).
type SettingsSetRequest struct {
	AccountID     int64   `json:"accountId"`
	LeaseSeconds  *int    `json:"leaseSeconds,omitempty"`
	OnLeaseExpiry *string `json:"onLeaseExpiry,omitempty"`
	MaxAttempts   *int    `json:"maxAttempts,omitempty"`
}
