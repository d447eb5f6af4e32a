// Package changes broadcasts billing's account changes to the token-lookup
// caches of every ingress replica (events.BillingAccountChanged).
package changes

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitosms/apitosms/libs/events"
)

// Notifier publishes events.AccountChanged.
type Notifier struct {
	nc    *nats.Conn
	names events.Names
	log   *slog.Logger
}

// New returns a notifier publishing on nc; a nil nc makes a notifier that
// does nothing (tests of the store alone).
func New(nc *nats.Conn, names events.Names, log *slog.Logger) *Notifier {
	return &Notifier{nc: nc, names: names, log: log}
}

// flushWait bounds waiting for the server to take a broadcast.
const flushWait = 2 * time.Second

// Changed tells every ingress replica that account id's token lookup
// changed, after the change was committed. It waits until the NATS server
// has taken the message (a flush), so that by the time the caller answers,
// the broadcast is on its way to every subscriber. A broadcast that cannot
// be sent is logged: the caches' time to live bounds how long they can
// serve the old answer.
func (n *Notifier) Changed(id int64) {
	if n == nil || n.nc == nil {
		return
	}
	data, err := events.Marshal(events.AccountChanged{AccountID: id})
	if err == nil {
		err = n.nc.Publish(n.names.BillingAccountChanged(), data)
	}
	if err == nil {
		err = n.nc.FlushTimeout(flushWait)
	}
	if err != nil && n.log != nil {
		n.log.Warn("broadcast account change failed; ingress caches expire on their own", "account", id, "err", err)
	}
}
