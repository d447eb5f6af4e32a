// Package store keeps the console's own tables (merchant credentials,
// invites, sealed API tokens) on SQLite or PostgreSQL.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/database"
)

//go:embed migrations
var migrations embed.FS

// Service names the migration tables and the SQLite file.
const Service = "console"

// ErrInviteInvalid: the code is unknown, used or expired (one answer for
// all three, so a code cannot be probed).
var ErrInviteInvalid = errors.New("invite invalid")

// ErrEmailTaken: another account already signs in with this email.
var ErrEmailTaken = errors.New("email taken")

// Store is the console's storage.
type Store struct{ db *bun.DB }

// New wraps the console's database.
func New(db *bun.DB) *Store { return &Store{db: db} }

// Migrate creates or updates the tables.
func (s *Store) Migrate(ctx context.Context) error {
	return database.Migrate(ctx, s.db, migrations, Service)
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

type credentialModel struct {
	bun.BaseModel `bun:"table:console_credentials"`

	AccountID    int64  `bun:"account_id,pk"`
	Email        string `bun:"email,notnull"`
	PasswordHash string `bun:"password_hash,notnull"`
	UpdatedMs    int64  `bun:"updated_ms,notnull"`
}

type inviteModel struct {
	bun.BaseModel `bun:"table:console_invites"`

	CodeHash  string `bun:"code_hash,pk"`
	AccountID int64  `bun:"account_id,notnull"`
	Email     string `bun:"email,notnull"`
	ExpiresMs int64  `bun:"expires_ms,notnull"`
	UsedMs    int64  `bun:"used_ms,notnull"`
	CreatedMs int64  `bun:"created_ms,notnull"`
}

type tokenModel struct {
	bun.BaseModel `bun:"table:console_tokens"`

	AccountID int64  `bun:"account_id,pk"`
	Sealed    string `bun:"sealed,notnull"`
	UpdatedMs int64  `bun:"updated_ms,notnull"`
}

// NormEmail is how emails are compared: trimmed, lower case.
func NormEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// CreateInvite stores a new invite for account (its unused ones are
// removed: the newest link is the only one that works).
func (s *Store) CreateInvite(ctx context.Context, codeHash string, account int64, email string, nowMs, expiresMs int64) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewDelete().Model((*inviteModel)(nil)).
			Where("account_id = ? AND used_ms = 0", account).Exec(ctx); err != nil {
			return fmt.Errorf("drop old invites: %w", err)
		}
		m := inviteModel{CodeHash: codeHash, AccountID: account, Email: NormEmail(email), ExpiresMs: expiresMs, CreatedMs: nowMs}
		if _, err := tx.NewInsert().Model(&m).Exec(ctx); err != nil {
			return fmt.Errorf("insert invite: %w", err)
		}
		return nil
	})
}

// Invite is a valid (unused, unexpired) invite.
type Invite struct {
	AccountID int64
	Email     string
}

// PeekInvite returns the invite of codeHash if it can still be used.
func (s *Store) PeekInvite(ctx context.Context, codeHash string, nowMs int64) (Invite, error) {
	var m inviteModel
	err := s.db.NewSelect().Model(&m).Where("code_hash = ? AND used_ms = 0 AND expires_ms > ?", codeHash, nowMs).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Invite{}, ErrInviteInvalid
	}
	if err != nil {
		return Invite{}, fmt.Errorf("select invite: %w", err)
	}
	return Invite{AccountID: m.AccountID, Email: m.Email}, nil
}

// AcceptInvite consumes the invite of codeHash and sets the account's
// password in one transaction: of two concurrent uses exactly one wins
// (the conditional update), the other gets ErrInviteInvalid.
func (s *Store) AcceptInvite(ctx context.Context, codeHash, passwordHash string, nowMs int64) (Invite, error) {
	var inv Invite
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var m inviteModel
		if err := tx.NewSelect().Model(&m).Where("code_hash = ?", codeHash).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrInviteInvalid
			}
			return fmt.Errorf("select invite: %w", err)
		}
		res, err := tx.NewUpdate().Model((*inviteModel)(nil)).Set("used_ms = ?", nowMs).
			Where("code_hash = ? AND used_ms = 0 AND expires_ms > ?", codeHash, nowMs).Exec(ctx)
		if err != nil {
			return fmt.Errorf("use invite: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrInviteInvalid
		}
		var other int64
		other, err = tx.NewSelect().Model((*credentialModel)(nil)).
			Where("email = ? AND account_id <> ?", m.Email, m.AccountID).Count(ctx)
		if err != nil {
			return fmt.Errorf("check email: %w", err)
		}
		if other > 0 {
			return ErrEmailTaken
		}
		c := credentialModel{AccountID: m.AccountID, Email: m.Email, PasswordHash: passwordHash, UpdatedMs: nowMs}
		if _, err := tx.NewInsert().Model(&c).
			On("CONFLICT (account_id) DO UPDATE").
			Set("email = EXCLUDED.email, password_hash = EXCLUDED.password_hash, updated_ms = EXCLUDED.updated_ms").
			Exec(ctx); err != nil {
			return fmt.Errorf("store credentials: %w", err)
		}
		inv = Invite{AccountID: m.AccountID, Email: m.Email}
		return nil
	})
	return inv, err
}

// Credentials returns the account and password hash that sign in with
// email; ok false when none does.
func (s *Store) Credentials(ctx context.Context, email string) (account int64, hash string, ok bool, err error) {
	var m credentialModel
	err = s.db.NewSelect().Model(&m).Where("email = ?", NormEmail(email)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("select credentials: %w", err)
	}
	return m.AccountID, m.PasswordHash, true, nil
}

// PutToken stores the sealed token of account (replacing the previous one).
func (s *Store) PutToken(ctx context.Context, account int64, sealed string, nowMs int64) error {
	m := tokenModel{AccountID: account, Sealed: sealed, UpdatedMs: nowMs}
	_, err := s.db.NewInsert().Model(&m).On("CONFLICT (account_id) DO UPDATE").
		Set("sealed = EXCLUDED.sealed, updated_ms = EXCLUDED.updated_ms").Exec(ctx)
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

// Token returns the sealed token of account; "" when the console never
// issued one.
func (s *Store) Token(ctx context.Context, account int64) (string, error) {
	var m tokenModel
	err := s.db.NewSelect().Model(&m).Where("account_id = ?", account).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("select token: %w", err)
	}
	return m.Sealed, nil
}
