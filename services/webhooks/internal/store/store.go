// Package store keeps the webhooks service's tables: endpoints, the
// undelivered events of each endpoint (the delivery queue, driven from the
// database so nothing lives only in memory) and the deliveries log. Every
// operation works on SQLite and PostgreSQL; times are Unix milliseconds, which
// compare the same way in both.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/accountrows"
	"github.com/apitosms/apitosms/libs/database"
)

//go:embed migrations
var migrations embed.FS

// Service names the migration table and the SQLite file.
const Service = "webhooks"

// ErrNotFound: no such endpoint for this account.
var ErrNotFound = errors.New("webhook not found")

// ErrTooMany: the account already has the most endpoints allowed.
var ErrTooMany = errors.New("too many webhooks")

// Endpoint is the bun model of one row of webhook_endpoints.
type Endpoint struct {
	bun.BaseModel `bun:"table:webhook_endpoints"`

	ID               string `bun:"id,pk"`
	AccountID        int64  `bun:"account_id"`
	URL              string `bun:"url"`
	Events           string `bun:"events"` // comma list; "" = the default set
	Batch            bool   `bun:"batch"`
	Enabled          bool   `bun:"enabled"`
	Description      string `bun:"description"`
	Secret           string `bun:"secret"`     // sealed
	OldSecret        string `bun:"old_secret"` // sealed; "" when none
	OldSecretUntilMs int64  `bun:"old_secret_until_ms"`
	FailingSinceMs   int64  `bun:"failing_since_ms"` // first failure since the last success; 0 when healthy
	DisabledReason   string `bun:"disabled_reason"`
	CreatedMs        int64  `bun:"created_ms"`
	UpdatedMs        int64  `bun:"updated_ms"`
}

// EventList returns the subscribed types ("" = nil).
func (e Endpoint) EventList() []string {
	if e.Events == "" {
		return nil
	}
	return strings.Split(e.Events, ",")
}

// Delivery is one undelivered event of one endpoint.
type Delivery struct {
	bun.BaseModel `bun:"table:webhook_deliveries"`

	ID         int64  `bun:"id,pk,autoincrement"`
	EndpointID string `bun:"endpoint_id"`
	EventID    string `bun:"event_id"`
	Type       string `bun:"type"`
	EventMs    int64  `bun:"event_ms"`
	// Payload is the body of a single delivery, as signed, or a chunk's
	// batch items. It lives in webhook_payloads (same id), apart from the
	// row a claim rewrites: Enqueue writes it, Claim reads it.
	Payload       string `bun:"-"`
	Attempts      int    `bun:"attempts"`
	NextAttemptMs int64  `bun:"next_attempt_ms"`
	// A chunk (several events of one producer message for a batch
	// endpoint, one row): Events > 1, IDs their event ids comma-separated
	// in order, EventID "chunk_" + a digest of IDs, Payload their batch
	// items ({"id",...},{"id",...}). A single event: Events 1, IDs "".
	Events int    `bun:"events"`
	IDs    string `bun:"ids"`
}

// EventIDs returns the ids of the events d carries.
func (d Delivery) EventIDs() []string {
	if d.IDs == "" {
		return []string{d.EventID}
	}
	return strings.Split(d.IDs, ",")
}

// Group splits claimed rows, in order, into POSTs of at most per events (a
// row larger than per goes alone): the rule Claim applies.
func Group(rows []Delivery, per int) [][]Delivery {
	var out [][]Delivery
	start, cur := 0, 0
	for i, r := range rows {
		if cur > 0 && cur+max(r.Events, 1) > per {
			out = append(out, rows[start:i])
			start, cur = i, 0
		}
		cur += max(r.Events, 1)
	}
	if start < len(rows) {
		out = append(out, rows[start:])
	}
	return out
}

// Attempt is one row of the deliveries log.
type Attempt struct {
	bun.BaseModel `bun:"table:webhook_attempts"`

	ID             int64   `bun:"id,pk,autoincrement"`
	EndpointID     string  `bun:"endpoint_id"`
	WebhookID      string  `bun:"webhook_id"`
	Type           string  `bun:"type"`
	Events         int     `bun:"events"`
	Attempt        int     `bun:"attempt"`
	Delivered      bool    `bun:"delivered"`
	ResponseStatus *int    `bun:"response_status"`
	DurationMs     int64   `bun:"duration_ms"`
	Error          *string `bun:"error"`
	AtMs           int64   `bun:"at_ms"`
}

// Store is the webhooks repository.
type Store struct {
	db *bun.DB
	pg bool

	// The fan-out's statements, prepared once (on SQLite's one connection
	// a transaction reuses them; PostgreSQL prepares each per connection
	// on first use) instead of built by bun and parsed on every batch: by
	// profile the endpoints' lookup was a quarter of the fan-out's CPU.
	prepMu   sync.Mutex
	prepared map[string]*sql.Stmt
	// Record's removal of delivered rows and its endpoints made healthy,
	// each list bound as one parameter (a JSON array read by json_each on
	// SQLite, an array on PostgreSQL).
	deleteSQL, healthySQL string
}

// New returns the store on db (migrated with Migrate).
func New(db *bun.DB) *Store {
	s := &Store{db: db, pg: database.IsPostgres(db), prepared: map[string]*sql.Stmt{},
		deleteSQL:  `DELETE FROM webhook_deliveries WHERE id IN (SELECT value FROM json_each(?))`,
		healthySQL: `UPDATE webhook_endpoints SET failing_since_ms = 0 WHERE failing_since_ms <> 0 AND id IN (SELECT value FROM json_each(?))`,
	}
	if s.pg {
		s.deleteSQL = `DELETE FROM webhook_deliveries WHERE id = ANY($1::bigint[])`
		s.healthySQL = `UPDATE webhook_endpoints SET failing_since_ms = 0 WHERE failing_since_ms <> 0 AND id = ANY($1::text[])`
	}
	return s
}

// stmt returns q prepared on the database, preparing it on first use.
// Never call it inside a transaction: on SQLite the transaction holds the
// one connection the preparation would wait for (use exec there).
func (s *Store) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if st, ok := s.prepared[q]; ok {
		return st, nil
	}
	st, err := s.db.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.prepared[q] = st
	return st, nil
}

// Migrate creates or updates the service's tables.
func Migrate(ctx context.Context, db *bun.DB) error {
	return database.Migrate(ctx, db, migrations, Service)
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Ms is t in Unix milliseconds.
func Ms(t time.Time) int64 { return t.UnixMilli() }

// Endpoints is the kind of the webhook_endpoints table's rows: ids "wh_" +
// 32 hex digits.
var Endpoints = accountrows.Kind{Prefix: "wh_", Lock: 0x7768, NotFound: ErrNotFound, AtMax: ErrTooMany}

// CreateEndpoint inserts e unless its account already has max endpoints
// (ErrTooMany). Concurrent creations for one account are serialised, so the
// limit holds.
func (s *Store) CreateEndpoint(ctx context.Context, e *Endpoint, max int) error {
	return accountrows.Create(ctx, s.db, Endpoints, e.AccountID, e, max)
}

// ListEndpoints returns an account's endpoints, oldest first.
func (s *Store) ListEndpoints(ctx context.Context, account int64) ([]Endpoint, error) {
	var out []Endpoint
	err := s.db.NewSelect().Model(&out).Where("account_id = ?", account).Order("created_ms", "id").Scan(ctx)
	return out, err
}

// GetEndpoint returns an account's endpoint, or ErrNotFound (also for
// another account's endpoint or a malformed id).
func (s *Store) GetEndpoint(ctx context.Context, account int64, id string) (Endpoint, error) {
	return accountrows.Get[Endpoint](ctx, s.db, Endpoints, account, id)
}

// UpdateEndpoint writes every field of e (matched by id and account).
func (s *Store) UpdateEndpoint(ctx context.Context, e *Endpoint) error {
	res, err := s.db.NewUpdate().Model(e).WherePK().Where("account_id = ?", e.AccountID).
		ExcludeColumn("id", "account_id", "created_ms").Exec(ctx)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteEndpoint removes an endpoint with its undelivered events and its log.
func (s *Store) DeleteEndpoint(ctx context.Context, account int64, id string) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*Endpoint)(nil)).Where("id = ? AND account_id = ?", id, account).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.NewDelete().Model((*Delivery)(nil)).Where("endpoint_id = ?", id).Exec(ctx); err != nil {
			return err
		}
		_, err = tx.NewDelete().Model((*Attempt)(nil)).Where("endpoint_id = ?", id).Exec(ctx)
		return err
	})
}

// exec runs q in tx through its statement prepared by stmt beforehand, or
// as plain SQL when it was not.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) error {
	s.prepMu.Lock()
	st := s.prepared[q]
	s.prepMu.Unlock()
	var err error
	if st != nil {
		_, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	} else {
		_, err = tx.ExecContext(ctx, q, args...)
	}
	return err
}

// listArg binds ids as one parameter: the slice itself on PostgreSQL (an
// array), a JSON array for json_each on SQLite.
func (s *Store) listArg(ids []int64) any {
	if s.pg {
		return ids
	}
	return database.JSONInts(ids)
}

// EnabledEndpoints returns the enabled endpoints of the given accounts:
// what the fan-out and a hand-off need of them (id, account, url, events,
// batch, secrets), the other fields zero. One prepared statement whatever
// the number of accounts: the list is bound as one parameter (a JSON array
// read by json_each on SQLite, an array on PostgreSQL).
func (s *Store) EnabledEndpoints(ctx context.Context, accounts []int64) ([]Endpoint, error) {
	var out []Endpoint
	if len(accounts) == 0 {
		return out, nil
	}
	const cols = `SELECT id, account_id, url, events, batch, secret, old_secret, old_secret_until_ms FROM webhook_endpoints WHERE enabled AND `
	q, arg := cols+`account_id IN (SELECT value FROM json_each(?))`, s.listArg(accounts)
	if s.pg {
		q = cols + `account_id = ANY($1::bigint[])`
	}
	st, err := s.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		e := Endpoint{Enabled: true}
		if err := rows.Scan(&e.ID, &e.AccountID, &e.URL, &e.Events, &e.Batch, &e.Secret, &e.OldSecret, &e.OldSecretUntilMs); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// SubscribedAccounts returns the enabled endpoints (account and events
// only) of up to limit accounts with an id above after, by account id.
func (s *Store) SubscribedAccounts(ctx context.Context, after int64, limit int) ([]Endpoint, error) {
	var out []Endpoint
	err := s.db.NewSelect().Model(&out).Column("account_id", "events").Where("enabled").
		Where("account_id IN (?)", s.db.NewSelect().Model((*Endpoint)(nil)).Distinct().Column("account_id").
			Where("enabled AND account_id > ?", after).Order("account_id").Limit(int64(limit))).
		Order("account_id").Scan(ctx)
	return out, err
}

// Endpoints returns the endpoints with the given ids, by id.
func (s *Store) Endpoints(ctx context.Context, ids []string) (map[string]Endpoint, error) {
	var rows []Endpoint
	out := make(map[string]Endpoint, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if err := s.db.NewSelect().Model(&rows).Where("id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, err
	}
	for _, e := range rows {
		out[e.ID] = e
	}
	return out, nil
}

// insertChunk bounds the rows of one INSERT on PostgreSQL.
const insertChunk = 1000

// Enqueue stores undelivered events in one transaction: a webhook_deliveries
// row each, and its payload in webhook_payloads. A row that already exists
// (same endpoint and event: a redelivered stream message) is left alone with
// its payload, so fan-out is idempotent. On return each row's ID is its new
// id, or 0 for a row that was already stored (the caller must not send a row
// it did not store: another may hold its lease).
//
// On SQLite (in process, no round trips) the rows go through prepared
// statements with bound parameters rather than bun's INSERT, which writes
// every value into the SQL text: a chunk's payload is up to 500 events
// (hundreds of kilobytes) that bun would escape and SQLite parse back, for
// every row (a tenth of the server's CPU in a drain with a batch webhook,
// by profile). On PostgreSQL a row per statement would cost a round trip
// each: there each table takes one INSERT of up to insertChunk rows, its
// columns bound as arrays (unnest), payloads never written into SQL text.
func (s *Store) Enqueue(ctx context.Context, rows []Delivery) error {
	if len(rows) == 0 {
		return nil
	}
	for i := range rows {
		rows[i].Events = max(rows[i].Events, 1)
		rows[i].ID = 0
	}
	if s.pg {
		return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for i := 0; i < len(rows); i += insertChunk {
				if err := enqueuePG(ctx, tx.Tx, rows[i:min(i+insertChunk, len(rows))]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	const qd = `INSERT INTO webhook_deliveries (endpoint_id, event_id, type, event_ms, attempts, next_attempt_ms, events, ids)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint_id, event_id) DO NOTHING`
	const qp = `INSERT INTO webhook_payloads (id, payload) VALUES (?, ?)`
	pd, err := s.stmt(ctx, qd)
	if err != nil {
		return err
	}
	pp, err := s.stmt(ctx, qp)
	if err != nil {
		return err
	}
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		sd, sp := tx.Tx.StmtContext(ctx, pd), tx.Tx.StmtContext(ctx, pp)
		defer sd.Close()
		defer sp.Close()
		for i := range rows {
			r := &rows[i]
			res, err := sd.ExecContext(ctx, r.EndpointID, r.EventID, r.Type, r.EventMs, r.Attempts,
				r.NextAttemptMs, r.Events, r.IDs)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				continue // already stored (its payload too)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			if _, err := sp.ExecContext(ctx, id, r.Payload); err != nil {
				return err
			}
			r.ID = id
		}
		return nil
	})
}

// enqueuePG inserts rows and the payloads of those that were new.
func enqueuePG(ctx context.Context, tx *sql.Tx, rows []Delivery) error {
	n := len(rows)
	var (
		endpoints, eventIDs, types, idLists = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		eventMs, attempts, next, evs        = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, r := range rows {
		endpoints[i], eventIDs[i], types[i], idLists[i] = r.EndpointID, r.EventID, r.Type, r.IDs
		eventMs[i], attempts[i], next[i], evs[i] = r.EventMs, int64(r.Attempts), r.NextAttemptMs, int64(r.Events)
	}
	res, err := tx.QueryContext(ctx, `INSERT INTO webhook_deliveries (endpoint_id, event_id, type, event_ms, attempts, next_attempt_ms, events, ids)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::integer[], $6::bigint[], $7::integer[], $8::text[])
ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id, endpoint_id, event_id`,
		endpoints, eventIDs, types, eventMs, attempts, next, evs, idLists)
	if err != nil {
		return err
	}
	type key struct{ endpoint, event string }
	at := make(map[key]int, n)
	for i, r := range rows {
		if _, dup := at[key{r.EndpointID, r.EventID}]; !dup {
			at[key{r.EndpointID, r.EventID}] = i
		}
	}
	var ids []int64
	var payloads []string
	for res.Next() {
		var id int64
		var k key
		if err := res.Scan(&id, &k.endpoint, &k.event); err != nil {
			res.Close()
			return err
		}
		ids, payloads = append(ids, id), append(payloads, rows[at[k]].Payload)
		rows[at[k]].ID = id
	}
	res.Close()
	if err := res.Err(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO webhook_payloads (id, payload) SELECT * FROM unnest($1::bigint[], $2::text[])`, ids, payloads)
	return err
}

// DueEndpoints returns up to limit enabled endpoints with at least one event
// due at nowMs, the longest-waiting first. Each endpoint costs one probe of
// the (endpoint_id, next_attempt_ms) index, whatever the backlog (claimed
// events are leased into the future, so the earliest time is due only if an
// unclaimed event is).
func (s *Store) DueEndpoints(ctx context.Context, nowMs int64, limit int) ([]string, error) {
	var ids []string
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM (
    SELECT e.id AS id, (SELECT MIN(d.next_attempt_ms) FROM webhook_deliveries d WHERE d.endpoint_id = e.id) AS due
    FROM webhook_endpoints e WHERE e.enabled) AS x
WHERE due <= ? ORDER BY due LIMIT ?`, nowMs, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// claimScan bounds the due rows one claim looks at.
const claimScan = 512

// Claim takes due events of an endpoint, oldest first, for at most posts
// POSTs of at most per events each (as Group splits them): it counts the
// attempt and moves next_attempt_ms to leaseUntilMs, so no other worker
// takes them and, should this one die, they come due again then. On
// PostgreSQL rows another replica is claiming are skipped (SKIP LOCKED);
// SQLite has one writer.
func (s *Store) Claim(ctx context.Context, endpoint string, nowMs, leaseUntilMs int64, posts, per int) ([]Delivery, error) {
	lock := ""
	if s.pg {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []Delivery
	err := database.RetryConflicts(ctx, func() error {
		out = out[:0]
		return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT id, events FROM webhook_deliveries WHERE endpoint_id = ? AND next_attempt_ms <= ?
ORDER BY next_attempt_ms, id LIMIT ?`+lock, endpoint, nowMs, min(posts*per, claimScan))
			if err != nil {
				return err
			}
			var ids []int64
			groups, cur := 0, 0
			for rows.Next() {
				var id int64
				var n int
				if err := rows.Scan(&id, &n); err != nil {
					rows.Close()
					return err
				}
				n = max(n, 1)
				if cur > 0 && cur+n > per {
					groups, cur = groups+1, 0
				}
				if groups == posts {
					break
				}
				ids, cur = append(ids, id), cur+n
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			// The lease rewrites the small row only; the payloads are read
			// from their own table.
			res, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET next_attempt_ms = ?, attempts = attempts + 1
WHERE id IN (?) RETURNING id, endpoint_id, event_id, type, event_ms, attempts, next_attempt_ms, events, ids`,
				leaseUntilMs, bun.List(ids))
			if err != nil {
				return err
			}
			for res.Next() {
				var d Delivery
				if err := res.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.Type, &d.EventMs, &d.Attempts, &d.NextAttemptMs, &d.Events, &d.IDs); err != nil {
					res.Close()
					return err
				}
				out = append(out, d)
			}
			res.Close()
			if err := res.Err(); err != nil {
				return err
			}
			at := make(map[int64]int, len(out))
			for i, d := range out {
				at[d.ID] = i
			}
			pr, err := tx.QueryContext(ctx, `SELECT id, payload FROM webhook_payloads WHERE id IN (?)`, bun.List(ids))
			if err != nil {
				return err
			}
			defer pr.Close()
			for pr.Next() {
				var id int64
				var p string
				if err := pr.Scan(&id, &p); err != nil {
					return err
				}
				if i, ok := at[id]; ok {
					out[i].Payload = p
				}
			}
			if err := pr.Err(); err != nil {
				return err
			}
			// RETURNING gives no order: back to the due order.
			slices.SortFunc(out, func(a, b Delivery) int {
				if c := cmp.Compare(a.NextAttemptMs, b.NextAttemptMs); c != 0 {
					return c
				}
				return cmp.Compare(a.ID, b.ID)
			})
			return nil
		})
	})
	return out, err
}

// Outcome is the result of one POST to record.
type Outcome struct {
	Attempt       *Attempt
	IDs           []int64 // the events the POST carried
	Delivered     bool    // 2xx: the events are removed
	NextAttemptMs int64   // otherwise: when they are tried next
	Gone          bool    // 410: the endpoint is disabled at once
}

// Record stores the outcomes of several POSTs in one transaction (one
// commit, one fsync): delivered events are removed and the endpoint marked
// healthy; failed events are rescheduled and the endpoint recorded as
// failing since the first failure, and disabled on a 410 or once failing for
// disableAfter. Every POST is logged. It returns the endpoints disabled, with
// the reason.
//
// Outcomes take effect in order. A run of delivered outcomes (the usual
// case) costs three statements whatever its length: the log rows in one
// INSERT, the delivered rows in one DELETE, the endpoints made healthy in
// one UPDATE, written as plain SQL with bound parameters (no bun query
// building per POST).
func (s *Store) Record(ctx context.Context, outs []Outcome, disableAfter time.Duration) (map[string]string, error) {
	var disabled map[string]string
	// Prepared before the transaction (not inside it: see stmt).
	queries := []string{s.deleteSQL, s.healthySQL}
	if len(outs) <= maxPreparedLog {
		queries = append(queries, s.logSQL(len(outs)))
	}
	for _, q := range queries {
		if _, err := s.stmt(ctx, q); err != nil {
			return nil, err
		}
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		disabled = map[string]string{}
		if err := s.logAttempts(ctx, tx.Tx, outs); err != nil {
			return err
		}
		for start := 0; start < len(outs); {
			if !outs[start].Delivered {
				reason, err := recordFailure(ctx, tx, outs[start], disableAfter)
				if err != nil {
					return err
				}
				if reason != "" {
					disabled[outs[start].Attempt.EndpointID] = reason
				}
				start++
				continue
			}
			end := start + 1
			for end < len(outs) && outs[end].Delivered {
				end++
			}
			if err := s.recordDelivered(ctx, tx.Tx, outs[start:end]); err != nil {
				return err
			}
			start = end
		}
		return nil
	})
	return disabled, err
}

// maxPreparedLog bounds the group sizes whose log INSERT is kept prepared.
const maxPreparedLog = 64

// logSQL is the INSERT of n log rows.
func (s *Store) logSQL(n int) string {
	const cols = 10
	var q strings.Builder
	q.WriteString(`INSERT INTO webhook_attempts (endpoint_id, webhook_id, type, events, attempt, delivered, response_status, duration_ms, error, at_ms) VALUES `)
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('(')
		database.Placeholders(&q, s.pg, i*cols+1, cols)
		q.WriteByte(')')
	}
	return q.String()
}

// logAttempts inserts the log rows of outs, in order, in one statement
// (prepared once per group size up to maxPreparedLog, by Record).
func (s *Store) logAttempts(ctx context.Context, tx *sql.Tx, outs []Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	args := make([]any, 0, 10*len(outs))
	for _, o := range outs {
		a := o.Attempt
		args = append(args, a.EndpointID, a.WebhookID, a.Type, a.Events, a.Attempt, a.Delivered, a.ResponseStatus, a.DurationMs, a.Error, a.AtMs)
	}
	return s.exec(ctx, tx, s.logSQL(len(outs)), args...)
}

// recordDelivered removes the events of delivered POSTs (their payloads go
// with them) and marks their endpoints healthy: two statements prepared
// once, each list bound as one parameter (a JSON array read by json_each on
// SQLite, an array on PostgreSQL).
func (s *Store) recordDelivered(ctx context.Context, tx *sql.Tx, outs []Outcome) error {
	var ids []int64
	var endpoints []string
	for _, o := range outs {
		ids = append(ids, o.IDs...)
		if !slices.Contains(endpoints, o.Attempt.EndpointID) {
			endpoints = append(endpoints, o.Attempt.EndpointID)
		}
	}
	idArg, epArg := s.listArg(ids), any(endpoints)
	if !s.pg {
		j, err := json.Marshal(endpoints)
		if err != nil {
			return err
		}
		epArg = string(j)
	}
	if err := s.exec(ctx, tx, s.deleteSQL, idArg); err != nil {
		return err
	}
	return s.exec(ctx, tx, s.healthySQL, epArg)
}

// recordFailure reschedules a failed POST's events and records its
// endpoint as failing, disabling it on a 410 or once failing for
// disableAfter (the reason it returns).
func recordFailure(ctx context.Context, tx bun.Tx, o Outcome, disableAfter time.Duration) (disabled string, err error) {
	a := o.Attempt
	if _, err := tx.NewUpdate().Model((*Delivery)(nil)).Set("next_attempt_ms = ?", o.NextAttemptMs).
		Where("id IN (?)", bun.List(o.IDs)).Exec(ctx); err != nil {
		return "", err
	}
	now := a.AtMs
	if _, err := tx.NewUpdate().Model((*Endpoint)(nil)).Set("failing_since_ms = ?", now).
		Where("id = ? AND failing_since_ms = 0", a.EndpointID).Exec(ctx); err != nil {
		return "", err
	}
	reason := "failing"
	q := tx.NewUpdate().Model((*Endpoint)(nil)).Set("enabled = ?", false).Where("id = ? AND enabled", a.EndpointID)
	if o.Gone {
		reason = "gone"
	} else {
		q = q.Where("failing_since_ms <= ?", now-disableAfter.Milliseconds())
	}
	res, err := q.Set("disabled_reason = ?", reason).Exec(ctx)
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return reason, nil
	}
	return "", nil
}

// Attempts returns up to limit log rows of an endpoint with id below
// before (0: from the newest), newest first.
func (s *Store) Attempts(ctx context.Context, endpoint string, before int64, limit int) ([]Attempt, error) {
	var out []Attempt
	q := s.db.NewSelect().Model(&out).Where("endpoint_id = ?", endpoint)
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	err := q.OrderExpr("id DESC").Limit(int64(limit)).Scan(ctx)
	return out, err
}

// Backlog returns how many events wait for enabled endpoints, and the
// event time of the oldest (0 when none).
func (s *Store) Backlog(ctx context.Context) (count int64, oldestMs int64, err error) {
	var row struct {
		N      int64         `bun:"n"`
		Oldest sql.NullInt64 `bun:"oldest"`
	}
	err = s.db.NewSelect().TableExpr("webhook_deliveries AS d").
		Join("JOIN webhook_endpoints AS e ON e.id = d.endpoint_id AND e.enabled").
		ColumnExpr("COALESCE(SUM(d.events), 0) AS n, MIN(d.event_ms) AS oldest").Scan(ctx, &row)
	return row.N, row.Oldest.Int64, err
}

// Sweep removes log rows older than beforeMs, and undelivered events older
// than beforeMs of disabled endpoints, or of endpoints deleted while a
// fan-out was storing events for them (an enabled endpoint's events are kept
// until delivered).
func (s *Store) Sweep(ctx context.Context, beforeMs int64) (int64, error) {
	res, err := s.db.NewDelete().Model((*Attempt)(nil)).Where("at_ms < ?", beforeMs).Exec(ctx)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	res, err = s.db.NewDelete().Model((*Delivery)(nil)).Where("event_ms < ?", beforeMs).
		Where("endpoint_id NOT IN (SELECT id FROM webhook_endpoints WHERE enabled)").Exec(ctx)
	if err != nil {
		return n, err
	}
	m, _ := res.RowsAffected()
	return n + m, nil
}

// Pending returns the number of undelivered events of an endpoint (tests).
func (s *Store) Pending(ctx context.Context, endpoint string) (int64, error) {
	var n int64
	err := s.db.NewSelect().Model((*Delivery)(nil)).ColumnExpr("COALESCE(SUM(events), 0)").Where("endpoint_id = ?", endpoint).Scan(ctx, &n)
	return n, err
}
