package apperr

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RetryAfterSeconds is the Retry-After of every 503: a broker leader election
// or a reconnection takes about that long.
const RetryAfterSeconds = "1"

// Unavailable reports whether err means a dependency did not answer or is
// not there right now (a broker call timed out, no server or responder, a
// JetStream cluster without a leader, a database connection that failed),
// as opposed to a bug. Such a failure is answered 503 with Retry-After, and
// an idempotent call may be retried on a fresh attempt. This is the one
// place that decides it.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if e, ok := As(err); ok {
		return e.Status == http.StatusServiceUnavailable
	}
	for _, target := range transient {
		if errors.Is(err, target) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return transientJetStream[apiErr.ErrorCode]
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-57P03: the server shuts down
		// or starts; 53300: too many connections.
		c := pgErr.Code
		return len(c) == 5 && (c[:2] == "08" || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300")
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.Timeout(err) {
		return true
	}
	var coded interface{ Code() int } // modernc.org/sqlite errors
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED: another writer holds the file
			return true
		}
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// transient are the errors that always mean "not now".
var transient = []error{
	context.DeadlineExceeded,
	nats.ErrTimeout,
	nats.ErrNoResponders,
	nats.ErrConnectionClosed,
	nats.ErrConnectionDraining,
	nats.ErrConnectionReconnecting,
	nats.ErrDisconnected,
	nats.ErrStaleConnection,
	nats.ErrNoServers,
	jetstream.ErrNoStreamResponse,
	jetstream.ErrAsyncPublishTimeout, // an object store chunk not acknowledged in time
	driver.ErrBadConn,
	sql.ErrConnDone,
	io.ErrUnexpectedEOF,
	syscall.ECONNREFUSED,
	syscall.ECONNRESET,
	syscall.EPIPE,
}

// transientJetStream are the JetStream API errors of a cluster in the middle
// of a leader election or missing peers.
var transientJetStream = map[jetstream.ErrorCode]bool{
	10004: true, // JSClusterIncompleteErr: incomplete results
	10005: true, // JSClusterNoPeersErr: no suitable peers for placement (a node is down)
	10007: true, // JSClusterNotAssignedErr
	10008: true, // JSClusterNotAvailErr: JetStream system temporarily unavailable
	10009: true, // JSClusterNotLeaderErr
	10118: true, // JSStreamOfflineErr
	10119: true, // JSConsumerOfflineErr
	10163: true, // JSStreamExpectedLastSeqPerSubjectNotReady
	10194: true, // JSStreamOfflineReasonErrF
	10195: true, // JSConsumerOfflineReasonErrF
}
