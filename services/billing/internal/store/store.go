// Package store keeps billing's tables (accounts, subscriptions, usage) on
// SQLite or PostgreSQL and exposes the transactional operations billing needs.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
)

//go:embed migrations
var migrations embed.FS

// Service names the migration tables and the SQLite file.
const Service = "billing"

// Store is billing's storage. It caches nothing: every read sees the latest
// committed state, so a rotated token stops working at once on every replica.
type Store struct {
	db *bun.DB
	pg bool

	authMu   sync.Mutex
	authStmt *sql.Stmt // authSQL, prepared once

	reserveMu     sync.Mutex
	reserveLookup *sql.Stmt // reserveLookupSQL, prepared on db (SQLite)
	reserveWrite  *sql.Stmt // reserveWriteSQL, prepared on db (SQLite)
	// reserveWriteMany is reserveWriteManySQL, prepared on db (SQLite).
	reserveWriteMany *sql.Stmt
}

// New wraps db, billing's own database.
func New(db *bun.DB) *Store {
	return &Store{db: db, pg: database.IsPostgres(db)}
}

// Migrate creates or updates billing's tables.
func (s *Store) Migrate(ctx context.Context) error {
	return database.Migrate(ctx, s.db, migrations, Service)
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

type accountModel struct {
	bun.BaseModel `bun:"table:accounts"`

	ID          int64     `bun:"id,pk,autoincrement"`
	Name        string    `bun:"name,notnull"`
	Email       string    `bun:"email,notnull"`
	TokenDigest string    `bun:"token_digest,notnull"`
	CreatedAt   time.Time `bun:"created_at,notnull"`
}

func (m accountModel) domain() domain.Account {
	return domain.Account{ID: m.ID, Name: m.Name, Email: m.Email, CreatedAt: m.CreatedAt.UTC()}
}

type subscriptionModel struct {
	bun.BaseModel `bun:"table:subscriptions"`

	AccountID          int64     `bun:"account_id,pk"`
	Plan               string    `bun:"plan,notnull"`
	MonthlyLimit       int64     `bun:"monthly_limit,notnull"`
	RateLimitPerMinute int       `bun:"rate_limit_per_minute,notnull"`
	ExpiresAt          time.Time `bun:"expires_at,nullzero"`
	StartedAt          time.Time `bun:"started_at,notnull"`
	EndedAt            time.Time `bun:"ended_at,nullzero"`
}

func (m subscriptionModel) domain() domain.Subscription {
	return domain.Subscription{
		Plan: m.Plan, MonthlyLimit: m.MonthlyLimit, RateLimitPerMinute: m.RateLimitPerMinute,
		ExpiresAt: utc(m.ExpiresAt), StartedAt: utc(m.StartedAt), EndedAt: utc(m.EndedAt),
	}
}

type usageModel struct {
	bun.BaseModel `bun:"table:usage"`

	AccountID int64  `bun:"account_id,pk"`
	Month     string `bun:"month,pk"`
	Used      int64  `bun:"used,notnull"`
	Fired     int    `bun:"events_fired,notnull"`
	Due       int    `bun:"events_due,notnull"`
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// storeTime is how a time goes into a column: UTC, microsecond precision (as
// PostgreSQL keeps it), so what is read back equals what was written.
func storeTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// CreateAccount stores a new account holding the token whose digest is given.
func (s *Store) CreateAccount(ctx context.Context, name, email, digest string, now time.Time) (domain.Account, error) {
	m := accountModel{Name: name, Email: email, TokenDigest: digest, CreatedAt: storeTime(now)}
	if _, err := s.db.NewInsert().Model(&m).Returning("id").Exec(ctx); err != nil {
		return domain.Account{}, fmt.Errorf("insert account: %w", err)
	}
	return m.domain(), nil
}

// AccountView is an account with its subscription (nil: none) and its usage
// of one month.
type AccountView struct {
	Account      domain.Account
	Subscription *domain.Subscription
	Used         int64
}

// Account returns account id with its subscription and usage of month, or
// domain.ErrAccountNotFound.
func (s *Store) Account(ctx context.Context, id int64, month string) (AccountView, error) {
	var a accountModel
	err := s.db.NewSelect().Model(&a).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return AccountView{}, domain.ErrAccountNotFound
	}
	if err != nil {
		return AccountView{}, fmt.Errorf("select account: %w", err)
	}
	v := AccountView{Account: a.domain()}
	if v.Subscription, err = s.subscription(ctx, s.db, id); err != nil {
		return AccountView{}, err
	}
	err = s.db.NewSelect().Model((*usageModel)(nil)).Column("used").
		Where("account_id = ? AND month = ?", id, month).Scan(ctx, &v.Used)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return AccountView{}, fmt.Errorf("select usage: %w", err)
	}
	return v, nil
}

// subscription returns the subscription of account id, or nil.
func (s *Store) subscription(ctx context.Context, db bun.IDB, id int64) (*domain.Subscription, error) {
	var m subscriptionModel
	err := db.NewSelect().Model(&m).Where("account_id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("select subscription: %w", err)
	}
	sub := m.domain()
	return &sub, nil
}

// AuthInfo is what billing tells about the owner of a token digest.
type AuthInfo struct {
	AccountID    int64
	TokenDigest  string
	Subscription *domain.Subscription
	Used         int64
}

// authRow is one row of the auth query; subscription and usage columns are
// NULL (scanned as zero) when the account has none.
// authSQL is the token lookup, prepared once: it runs on every API request.
const authSQL = `SELECT a.id, a.token_digest, s.account_id AS sub_account_id, s.plan,
	s.monthly_limit, s.rate_limit_per_minute, s.expires_at, s.started_at, s.ended_at, u.used
	FROM accounts AS a
	LEFT JOIN subscriptions AS s ON s.account_id = a.id
	LEFT JOIN usage AS u ON u.account_id = a.id AND u.month = ?
	WHERE a.token_digest = ?`

// scanAuth runs authSQL through a statement prepared on first use (bun's own
// queries inline their arguments, so the database would parse every one).
func (s *Store) scanAuth(ctx context.Context, r *authRow, month, digest string) error {
	s.authMu.Lock()
	if s.authStmt == nil {
		q := authSQL
		if s.pg {
			q = strings.Replace(strings.Replace(q, "?", "$1", 1), "?", "$2", 1)
		}
		st, err := s.db.DB.PrepareContext(ctx, q)
		if err != nil {
			s.authMu.Unlock()
			return fmt.Errorf("prepare auth: %w", err)
		}
		s.authStmt = st
	}
	st := s.authStmt
	s.authMu.Unlock()
	rows, err := st.QueryContext(ctx, month, digest)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	return s.db.ScanRow(ctx, rows, r)
}

type authRow struct {
	ID                 int64     `bun:"id"`
	TokenDigest        string    `bun:"token_digest"`
	SubAccountID       int64     `bun:"sub_account_id"`
	Plan               string    `bun:"plan"`
	MonthlyLimit       int64     `bun:"monthly_limit"`
	RateLimitPerMinute int       `bun:"rate_limit_per_minute"`
	ExpiresAt          time.Time `bun:"expires_at"`
	StartedAt          time.Time `bun:"started_at"`
	EndedAt            time.Time `bun:"ended_at"`
	Used               int64     `bun:"used"`
}

// AuthByDigest finds the account holding the token of digest (an indexed
// lookup, one round trip) with its subscription and usage of month. An
// unknown digest is sql.ErrNoRows; the caller compares digests in constant time.
func (s *Store) AuthByDigest(ctx context.Context, digest, month string) (AuthInfo, error) {
	var r authRow
	err := s.scanAuth(ctx, &r, month, digest)
	if err != nil {
		return AuthInfo{}, err
	}
	info := AuthInfo{AccountID: r.ID, TokenDigest: r.TokenDigest, Used: r.Used}
	if r.SubAccountID != 0 {
		info.Subscription = &domain.Subscription{
			Plan: r.Plan, MonthlyLimit: r.MonthlyLimit, RateLimitPerMinute: r.RateLimitPerMinute,
			ExpiresAt: utc(r.ExpiresAt), StartedAt: utc(r.StartedAt), EndedAt: utc(r.EndedAt),
		}
	}
	return info, nil
}

// RotateToken replaces the token digest of account id in one statement, or
// returns domain.ErrAccountNotFound.
func (s *Store) RotateToken(ctx context.Context, id int64, digest string) error {
	res, err := s.db.NewUpdate().Model((*accountModel)(nil)).
		Set("token_digest = ?", digest).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("rotate token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return domain.ErrAccountNotFound
	}
	return nil
}
