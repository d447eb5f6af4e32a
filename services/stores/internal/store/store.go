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

// OptedOut reports whether phone is opted out for account.
func OptedOut(ctx context.Context, db bun.IDB, account int64, phone string) (bool, error) {
	return db.NewSelect().Model((*OptOut)(nil)).Where("account_id = ? AND phone = ?", account, phone).Exists(ctx)
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

// SeeDelivery records a delivery as received (once) and reports whether it
// was already done: the caller then logs a duplicate and sends nothing.
func SeeDelivery(ctx context.Context, db bun.IDB, store, delivery string, nowMs int64) (done bool, err error) {
	d := Delivery{StoreID: store, DeliveryID: delivery, ReceivedMs: nowMs}
	if _, err := db.NewInsert().Model(&d).On("CONFLICT (store_id, delivery_id) DO NOTHING").Exec(ctx); err != nil {
		return false, err
	}
	err = db.NewSelect().Model(&d).WherePK().Scan(ctx)
	return d.Done, err
}

// ClaimSend returns the send record of key, creating it for delivery when
// there is none. The caller resumes a record its own delivery owns and
// treats any other as a duplicate.
func ClaimSend(ctx context.Context, db bun.IDB, store, key, delivery string, nowMs int64) (Send, error) {
	r := Send{StoreID: store, SendKey: key, DeliveryID: delivery, State: SendPending, CreatedMs: nowMs}
	if _, err := db.NewInsert().Model(&r).On("CONFLICT (store_id, send_key) DO NOTHING").Exec(ctx); err != nil {
		return r, err
	}
	err := db.NewSelect().Model(&r).WherePK().Scan(ctx)
	return r, err
}

// SetSend writes a send record's state, month and hash.
func SetSend(ctx context.Context, db bun.IDB, r Send) error {
	_, err := db.NewUpdate().Model(&r).Column("state", "month", "grp", "idx", "account_id", "phone", "body", "hash").WherePK().Exec(ctx)
	return err
}

// Group returns every send record published in stream message grp, by place.
func Group(ctx context.Context, db bun.IDB, grp string) ([]Send, error) {
	var out []Send
	err := db.NewSelect().Model(&out).Where("grp = ?", grp).Order("idx").Scan(ctx)
	return out, err
}

// RememberOrder stores what is known of an order.
func RememberOrder(ctx context.Context, db bun.IDB, store, order, data string, nowMs int64) error {
	o := Order{StoreID: store, OrderID: order, Data: data, UpdatedMs: nowMs}
	_, err := db.NewInsert().Model(&o).On("CONFLICT (store_id, order_id) DO UPDATE").
		Set("data = EXCLUDED.data").Set("updated_ms = EXCLUDED.updated_ms").Exec(ctx)
	return err
}

// RecallOrder returns what is known of an order ("" when nothing).
func RecallOrder(ctx context.Context, db bun.IDB, store, order string) (string, error) {
	var o Order
	err := db.NewSelect().Model(&o).Where("store_id = ? AND order_id = ?", store, order).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return o.Data, err
}

// DeliveryRef names one delivery.
type DeliveryRef struct{ Store, Delivery string }

// Finish logs decisions and marks deliveries done (in the caller's transaction).
func Finish(ctx context.Context, db bun.IDB, entries []LogEntry, done []DeliveryRef) error {
	if len(entries) > 0 {
		if _, err := db.NewInsert().Model(&entries).ExcludeColumn("id").Exec(ctx); err != nil {
			return err
		}
	}
	for _, d := range done {
		if _, err := db.NewUpdate().Model((*Delivery)(nil)).Set("done = ?", true).
			Where("store_id = ? AND delivery_id = ?", d.Store, d.Delivery).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
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
