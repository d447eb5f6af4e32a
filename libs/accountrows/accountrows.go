// Package accountrows keeps the rows an account owns in one of a service's
// tables (webhook endpoints, store connections): ids that name them, a
// creation that never takes an account past its maximum, and reads scoped to
// the account.
package accountrows

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/database"
)

// Kind describes one table of account-owned rows. Its model has the columns
// id and account_id.
type Kind struct {
	// Prefix starts every id, e.g. "wh_"; the rest is 128 random bits in
	// lower-case hex.
	Prefix string
	// Lock names the table's creations among PostgreSQL's advisory locks
	// (the pair Lock, account id); it must differ between kinds.
	Lock int32
	// NotFound is returned for a row that is not there, is another
	// account's, or whose id is malformed.
	NotFound error
	// AtMax is returned by Create when the account already has its maximum.
	AtMax error
}

// NewID returns a fresh id of kind k.
func (k Kind) NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return k.Prefix + hex.EncodeToString(b[:])
}

// WellFormedID reports whether id can name a row of kind k at all.
func (k Kind) WellFormedID(id string) bool {
	if len(id) != len(k.Prefix)+32 || !strings.HasPrefix(id, k.Prefix) {
		return false
	}
	_, err := hex.DecodeString(id[len(k.Prefix):])
	return err == nil && strings.ToLower(id) == id
}

// Create inserts row, a model of k's table owned by account, unless the
// account already has max rows there (k.AtMax). Concurrent creations for one
// account are serialised (PostgreSQL: an advisory lock held to the end of the
// transaction; SQLite: its single writer), so the maximum holds.
func Create[T any](ctx context.Context, db *bun.DB, k Kind, account int64, row *T, max int) error {
	pg := database.IsPostgres(db)
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if pg {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?, ?)", k.Lock, int32(account)); err != nil {
				return err
			}
		}
		n, err := tx.NewSelect().Model((*T)(nil)).Where("account_id = ?", account).Count(ctx)
		if err != nil {
			return err
		}
		if n >= int64(max) {
			return k.AtMax
		}
		_, err = tx.NewInsert().Model(row).Exec(ctx)
		return err
	})
}

// Get returns the row of k's table with id that account owns, or
// k.NotFound (also for another account's row or a malformed id).
func Get[T any](ctx context.Context, db bun.IDB, k Kind, account int64, id string) (T, error) {
	var row T
	if !k.WellFormedID(id) {
		return row, k.NotFound
	}
	err := db.NewSelect().Model(&row).Where("id = ? AND account_id = ?", id, account).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return row, k.NotFound
	}
	return row, err
}
