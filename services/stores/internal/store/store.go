// Package store keeps the stores service's tables: store connections,
// opt-outs, the deliveries seen (24 h dedupe), the at-most-once record of
// every SMS an order event may cause, what is known of each order, and the
// decisions log. Every operation works on SQLite and PostgreSQL; times are
// Unix milliseconds.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/accountrows"
	"github.com/apitosms/apitosms/libs/database"
)

//go:embed migrations
var migrations embed.FS

// Service names the migration table and the SQLite file.
const Service = "stores"

// ErrNotFound: no such store (for this account).
var ErrNotFound = errors.New("store not found")

// ErrTooMany: the account already has the most stores allowed.
var ErrTooMany = errors.New("too many stores")

// Conn is the bun model of one store connection.
type Conn struct {
	bun.BaseModel `bun:"table:stores"`

	ID             string `bun:"id,pk"`
	AccountID      int64  `bun:"account_id"`
	Platform       string `bun:"platform"`
	Name           string `bun:"name"`
	Secret         string `bun:"secret"` // sealed
	DefaultCountry string `bun:"default_country"`
	AdminPhones    string `bun:"admin_phones"` // JSON array of E.164
	Templates      string `bun:"templates"`    // JSON object of the keys set by the merchant
	PhoneFrom      string `bun:"phone_from"`   // comma list
	CreatedMs      int64  `bun:"created_ms"`
	UpdatedMs      int64  `bun:"updated_ms"`
}

// OptOut is one opted-out phone of an account.
type OptOut struct {
	bun.BaseModel `bun:"table:store_opt_outs"`

	AccountID int64  `bun:"account_id,pk"`
	Phone     string `bun:"phone,pk"`
	CreatedMs int64  `bun:"created_ms"`
}

// Delivery is one platform delivery seen.
type Delivery struct {
	bun.BaseModel `bun:"table:store_deliveries"`

	StoreID    string `bun:"store_id,pk"`
	DeliveryID string `bun:"delivery_id,pk"`
	ReceivedMs int64  `bun:"received_ms"`
	Done       bool   `bun:"done"`
}

// Send states.
const (
	SendPending = "pending"
	SendQueued  = "queued"
	SendSkipped = "skipped"
)

// Send is the at-most-once record of one SMS an order event may cause.
type Send struct {
	bun.BaseModel `bun:"table:store_sends"`

	StoreID    string `bun:"store_id,pk"`
	SendKey    string `bun:"send_key,pk"`
	DeliveryID string `bun:"delivery_id"` // the delivery that owns it
	State      string `bun:"state"`
	Month      string `bun:"month"` // quota reserved in this month ("" = not yet)
	Grp        string `bun:"grp"`   // the stream message it is published in ("" = not yet)
	Idx        int    `bun:"idx"`   // its place in that message
	AccountID  int64  `bun:"account_id"`
	Phone      string `bun:"phone"`
	Body       string `bun:"body"`
	Hash       string `bun:"hash"`
	CreatedMs  int64  `bun:"created_ms"`
}

// Order is what is remembered of an order.
type Order struct {
	bun.BaseModel `bun:"table:store_orders"`

	StoreID   string `bun:"store_id,pk"`
	OrderID   string `bun:"order_id,pk"`
	Data      string `bun:"data"`
	UpdatedMs int64  `bun:"updated_ms"`
}

// LogEntry is one decision of the log.
type LogEntry struct {
	bun.BaseModel `bun:"table:store_log"`

	ID          int64  `bun:"id,pk,autoincrement"`
	StoreID     string `bun:"store_id"`
	DeliveryID  string `bun:"delivery_id"`
	Topic       string `bun:"topic"`
	Event       string `bun:"event"`
	OrderNumber string `bun:"order_number"`
	Recipient   string `bun:"recipient"`
	Decision    string `bun:"decision"`
	Reason      string `bun:"reason"`
	Hash        string `bun:"hash"`
	AtMs        int64  `bun:"at_ms"`
}

// Store is the stores repository.
type Store struct {
	db *bun.DB
}

// New returns the store on db (migrated with Migrate).
func New(db *bun.DB) *Store { return &Store{db: db} }

// Migrate creates or updates the service's tables.
func Migrate(ctx context.Context, db *bun.DB) error {
	return database.Migrate(ctx, db, migrations, Service)
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Ms is t in Unix milliseconds.
func Ms(t time.Time) int64 { return t.UnixMilli() }

// Stores is the kind of the stores table's rows: ids "st_" + 32 hex digits.
var Stores = accountrows.Kind{Prefix: "st_", Lock: 0x7374, NotFound: ErrNotFound, AtMax: ErrTooMany}

// Create inserts c unless its account already has max stores (ErrTooMany).
func (s *Store) Create(ctx context.Context, c *Conn, max int) error {
	return accountrows.Create(ctx, s.db, Stores, c.AccountID, c, max)
}

// List returns an account's stores, oldest first.
func (s *Store) List(ctx context.Context, account int64) ([]Conn, error) {
	var out []Conn
	err := s.db.NewSelect().Model(&out).Where("account_id = ?", account).Order("created_ms", "id").Scan(ctx)
	return out, err
}

// Get returns one store of an account (ErrNotFound, also for a malformed id).
func (s *Store) Get(ctx context.Context, account int64, id string) (Conn, error) {
	return accountrows.Get[Conn](ctx, s.db, Stores, account, id)
}

// ByID returns a store whatever its account (ErrNotFound): the receiving
// endpoints and the consumer know only the id.
func (s *Store) ByID(ctx context.Context, id string) (Conn, error) {
	var c Conn
	err := s.db.NewSelect().Model(&c).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

// Update writes every field of c (ErrNotFound).
func (s *Store) Update(ctx context.Context, c *Conn) error {
	res, err := s.db.NewUpdate().Model(c).WherePK().Where("account_id = ?", c.AccountID).Exec(ctx)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Delete removes a store with its log, sends, orders and deliveries
// (ErrNotFound).
func (s *Store) Delete(ctx context.Context, account int64, id string) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*Conn)(nil)).Where("id = ? AND account_id = ?", id, account).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		for _, m := range []any{(*LogEntry)(nil), (*Send)(nil), (*Order)(nil), (*Delivery)(nil)} {
			if _, err := tx.NewDelete().Model(m).Where("store_id = ?", id).Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// OptOuts returns an account's opted-out phones, sorted.
func (s *Store) OptOuts(ctx context.Context, account int64) ([]string, error) {
	var out []string
	err := s.db.NewSelect().Model((*OptOut)(nil)).Column("phone").Where("account_id = ?", account).
		Order("phone").Scan(ctx, &out)
	return out, err
}

// AddOptOuts records phones (already E.164); it returns how many were new.
func (s *Store) AddOptOuts(ctx context.Context, account int64, phones []string) (int, error) {
	if len(phones) == 0 {
		return 0, nil
	}
	now := Ms(time.Now())
	added := 0
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		added = 0
		for i := 0; i < len(phones); i += 500 {
			part := phones[i:min(i+500, len(phones))]
			rows := make([]OptOut, len(part))
			for j, p := range part {
				rows[j] = OptOut{AccountID: account, Phone: p, CreatedMs: now}
			}
			res, err := tx.NewInsert().Model(&rows).On("CONFLICT (account_id, phone) DO NOTHING").Exec(ctx)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			added += int(n)
		}
		return nil
	})
	return added, err
}

// RemoveOptOuts forgets phones; it returns how many were there.
func (s *Store) RemoveOptOuts(ctx context.Context, account int64, phones []string) (int, error) {
	if len(phones) == 0 {
		return 0, nil
	}
	res, err := s.db.NewDelete().Model((*OptOut)(nil)).Where("account_id = ? AND phone IN (?)", account, bun.List(phones)).Exec(ctx)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// OptedOut returns which of phones (E.164) are opted out for account.
func OptedOut(ctx context.Context, db bun.IDB, account int64, phones []string) (map[string]bool, error) {
	out := map[string]bool{}
	for part := range slices.Chunk(phones, chunk) {
		var got []string
		if err := db.NewSelect().Model((*OptOut)(nil)).Column("phone").
			Where("account_id = ? AND phone IN (?)", account, bun.List(part)).Scan(ctx, &got); err != nil {
			return nil, err
		}
		for _, p := range got {
			out[p] = true
		}
	}
	return out, nil
}

// Tx runs fn in one transaction (one commit: on SQLite one fsync for a
// whole batch of deliveries).
func (s *Store) Tx(ctx context.Context, fn func(ctx context.Context, tx bun.IDB) error) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx) })
}

// DB is the store's database, for the methods that take a bun.IDB outside
// a transaction.
func (s *Store) DB() bun.IDB { return s.db }

// Existing returns which of ids are stores (not deleted).
func Existing(ctx context.Context, db bun.IDB, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	var got []string
	if err := db.NewSelect().Model((*Conn)(nil)).Column("id").Where("id IN (?)", bun.List(ids)).Scan(ctx, &got); err != nil {
		return nil, err
	}
	for _, id := range got {
		out[id] = true
	}
	return out, nil
}

// The consumer works on batches of deliveries: each operation below is a
// few statements for the whole batch, not one per delivery (on SQLite
// every statement is parsed anew: per-row statements were most of the
// consumer's CPU). chunk bounds the rows of one statement.
const chunk = 500

// DeliveryRef names one delivery.
type DeliveryRef struct{ Store, Delivery string }

// SendRef names one send record.
type SendRef struct{ Store, Key string }

// OrderRef names one remembered order.
type OrderRef struct{ Store, Order string }

// perStore calls fn with the distinct keys of each store, at most chunk at
// a time, stores in the order first seen.
func perStore(refs [][2]string, fn func(store string, keys []string) error) error {
	byStore := map[string][]string{}
	var stores []string
	seen := map[[2]string]bool{}
	for _, r := range refs {
		if seen[r] {
			continue
		}
		seen[r] = true
		if _, ok := byStore[r[0]]; !ok {
			stores = append(stores, r[0])
		}
		byStore[r[0]] = append(byStore[r[0]], r[1])
	}
	for _, st := range stores {
		for part := range slices.Chunk(byStore[st], chunk) {
			if err := fn(st, part); err != nil {
				return err
			}
		}
	}
	return nil
}

// SeeDeliveries records deliveries as received (once each) and returns
// those already done: the caller logs each a duplicate and sends nothing.
func SeeDeliveries(ctx context.Context, db bun.IDB, refs []DeliveryRef, nowMs int64) (map[DeliveryRef]bool, error) {
	keys := make([][2]string, len(refs))
	for i, r := range refs {
		keys[i] = [2]string{r.Store, r.Delivery}
	}
	done := map[DeliveryRef]bool{}
	err := perStore(keys, func(st string, ids []string) error {
		rows := make([]Delivery, len(ids))
		for i, id := range ids {
			rows[i] = Delivery{StoreID: st, DeliveryID: id, ReceivedMs: nowMs}
		}
		if _, err := db.NewInsert().Model(&rows).On("CONFLICT (store_id, delivery_id) DO NOTHING").Exec(ctx); err != nil {
			return err
		}
		var got []string
		if err := db.NewSelect().Model((*Delivery)(nil)).Column("delivery_id").
			Where("store_id = ? AND done AND delivery_id IN (?)", st, bun.List(ids)).Scan(ctx, &got); err != nil {
			return err
		}
		for _, id := range got {
			done[DeliveryRef{st, id}] = true
		}
		return nil
	})
	return done, err
}

// ClaimSends returns the send record of each claim (StoreID, SendKey,
// DeliveryID), creating it for the first claim of its key when there is
// none. The caller resumes a record its own delivery owns and treats any
// other as a duplicate.
func ClaimSends(ctx context.Context, db bun.IDB, claims []Send, nowMs int64) (map[SendRef]Send, error) {
	first := map[SendRef]Send{}
	keys := make([][2]string, 0, len(claims))
	for _, c := range claims {
		ref := SendRef{c.StoreID, c.SendKey}
		if _, ok := first[ref]; !ok {
			first[ref] = Send{StoreID: c.StoreID, SendKey: c.SendKey, DeliveryID: c.DeliveryID, State: SendPending, CreatedMs: nowMs}
		}
		keys = append(keys, [2]string{c.StoreID, c.SendKey})
	}
	out := make(map[SendRef]Send, len(first))
	err := perStore(keys, func(st string, ks []string) error {
		rows := make([]Send, len(ks))
		for i, k := range ks {
			rows[i] = first[SendRef{st, k}]
		}
		if _, err := db.NewInsert().Model(&rows).On("CONFLICT (store_id, send_key) DO NOTHING").Exec(ctx); err != nil {
			return err
		}
		var got []Send
		if err := db.NewSelect().Model(&got).Where("store_id = ? AND send_key IN (?)", st, bun.List(ks)).Scan(ctx); err != nil {
			return err
		}
		for _, r := range got {
			out[SendRef{r.StoreID, r.SendKey}] = r
		}
		return nil
	})
	return out, err
}

// SetSends writes send records' state, month, group, place, SMS and hash
// (the last of a key wins). Records that no longer exist (their store was
// deleted) stay deleted.
func SetSends(ctx context.Context, db bun.IDB, recs []Send) error {
	rows := lastOfEach(recs, func(r Send) SendRef { return SendRef{r.StoreID, r.SendKey} })
	// UPDATE ... FROM (VALUES ...): one statement on SQLite (3.33+) and
	// PostgreSQL, whose VALUES both name their columns column1, column2...
	for part := range slices.Chunk(rows, chunk) {
		var q strings.Builder
		args := make([]any, 0, 10*len(part))
		q.WriteString("UPDATE store_sends SET state = v.column3, month = v.column4, grp = v.column5, idx = v.column6, " +
			"account_id = v.column7, phone = v.column8, body = v.column9, hash = v.column10 FROM (VALUES ")
		for i, r := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, r.StoreID, r.SendKey, r.State, r.Month, r.Grp, r.Idx, r.AccountID, r.Phone, r.Body, r.Hash)
		}
		q.WriteString(") AS v WHERE store_sends.store_id = v.column1 AND store_sends.send_key = v.column2")
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// lastOfEach keeps, in order, the last element of list for each key: one
// row per key in a multi-row statement, which may not touch a row twice.
func lastOfEach[T any, K comparable](list []T, key func(T) K) []T {
	last := make(map[K]int, len(list))
	for i, v := range list {
		last[key(v)] = i
	}
	out := make([]T, 0, len(last))
	for i, v := range list {
		if last[key(v)] == i {
			out = append(out, v)
		}
	}
	return out
}

// Group returns every send record published in stream message grp, by place.
func Group(ctx context.Context, db bun.IDB, grp string) ([]Send, error) {
	var out []Send
	err := db.NewSelect().Model(&out).Where("grp = ?", grp).Order("idx").Scan(ctx)
	return out, err
}

// RememberOrders stores what is known of orders (the last of an order wins).
func RememberOrders(ctx context.Context, db bun.IDB, list []Order) error {
	rows := lastOfEach(list, func(o Order) OrderRef { return OrderRef{o.StoreID, o.OrderID} })
	for part := range slices.Chunk(rows, chunk) {
		if _, err := db.NewInsert().Model(&part).On("CONFLICT (store_id, order_id) DO UPDATE").
			Set("data = EXCLUDED.data").Set("updated_ms = EXCLUDED.updated_ms").Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// RecallOrders returns what is known of orders (absent when nothing).
func RecallOrders(ctx context.Context, db bun.IDB, refs []OrderRef) (map[OrderRef]string, error) {
	keys := make([][2]string, len(refs))
	for i, r := range refs {
		keys[i] = [2]string{r.Store, r.Order}
	}
	out := map[OrderRef]string{}
	err := perStore(keys, func(st string, ids []string) error {
		var got []Order
		if err := db.NewSelect().Model(&got).Where("store_id = ? AND order_id IN (?)", st, bun.List(ids)).Scan(ctx); err != nil {
			return err
		}
		for _, o := range got {
			out[OrderRef{st, o.OrderID}] = o.Data
		}
		return nil
	})
	return out, err
}

// Finish logs decisions and marks deliveries done (in the caller's transaction).
func Finish(ctx context.Context, db bun.IDB, entries []LogEntry, done []DeliveryRef) error {
	for part := range slices.Chunk(entries, chunk) {
		if _, err := db.NewInsert().Model(&part).ExcludeColumn("id").Exec(ctx); err != nil {
			return err
		}
	}
	keys := make([][2]string, len(done))
	for i, d := range done {
		keys[i] = [2]string{d.Store, d.Delivery}
	}
	return perStore(keys, func(st string, ids []string) error {
		_, err := db.NewUpdate().Model((*Delivery)(nil)).Set("done = ?", true).
			Where("store_id = ? AND delivery_id IN (?)", st, bun.List(ids)).Exec(ctx)
		return err
	})
}

// AddLog writes one log entry.
func (s *Store) AddLog(ctx context.Context, e LogEntry) error {
	_, err := s.db.NewInsert().Model(&e).ExcludeColumn("id").Exec(ctx)
	return err
}

// Log returns up to limit entries of a store older than before (0: the
// newest), newest first.
func (s *Store) Log(ctx context.Context, store string, before int64, limit int) ([]LogEntry, error) {
	var out []LogEntry
	q := s.db.NewSelect().Model(&out).Where("store_id = ?", store)
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	err := q.OrderExpr("id DESC").Limit(int64(limit)).Scan(ctx)
	return out, err
}

// Sweep removes log entries older than logBefore, deliveries seen before
// dedupeBefore, and send records and orders older than keepBefore.
func (s *Store) Sweep(ctx context.Context, logBefore, dedupeBefore, keepBefore int64) (int64, error) {
	var total int64
	for _, q := range []*bun.DeleteQuery{
		s.db.NewDelete().Model((*LogEntry)(nil)).Where("at_ms < ?", logBefore),
		s.db.NewDelete().Model((*Delivery)(nil)).Where("received_ms < ? AND done", dedupeBefore),
		s.db.NewDelete().Model((*Send)(nil)).Where("created_ms < ?", keepBefore),
		s.db.NewDelete().Model((*Order)(nil)).Where("updated_ms < ?", keepBefore),
	} {
		res, err := q.Exec(ctx)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
