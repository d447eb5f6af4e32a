//go:build !unix

package database

import (
	"context"

	"github.com/uptrace/bun"
)

// lockSQLiteMigrations is a no-op where flock is not available: run one
// process per SQLite data dir there.
func lockSQLiteMigrations(context.Context, *bun.DB, string) (func(), error) { return func() {}, nil }
