// Package store keeps the status service's deliveries table: one row per
// accepted message (FIFO position, account) with its delivery outcome. A
// message's public hash is its position encrypted (libs/hashid): ingress
// decodes it before a report reaches this service.
// Every operation works on SQLite and PostgreSQL.
package store

import (
	"context"
	"embed"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/database"
)

//go:embed migrations
var migrations embed.FS

// Service names the migration table and the SQLite file.
const Service = "status"

// Delivery is the bun model of one row of deliveries.
type Delivery struct {
	bun.BaseModel `bun:"table:deliveries"`

	Pos        int64     `bun:"pos,pk"`
	AccountID  int64     `bun:"account_id"`
	Status     int       `bun:"status"`
	Device     string    `bun:"device,nullzero"`
	ReportedAt time.Time `bun:"reported_at,nullzero"`
}

// Store is the deliveries repository.
type Store struct {
	db    *bun.DB
	pg    bool
	stmts *sqliteStmts // SQLite's prepared report statements (prepared.go)
}

// New returns the store on db (migrated with Migrate).
func New(db *bun.DB) *Store {
	s := &Store{db: db, pg: database.IsPostgres(db)}
	if !s.pg {
		s.stmts = &sqliteStmts{}
	}
	return s
}

// Migrate creates or updates the service's tables.
func Migrate(ctx context.Context, db *bun.DB) error {
	return database.Migrate(ctx, db, migrations, Service)
}

// Postgres reports whether the store is on PostgreSQL (which takes
// concurrent writers) rather than SQLite (one writer).
func (s *Store) Postgres() bool { return s.pg }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Get returns the row of the message at pos, or sql.ErrNoRows.
func (s *Store) Get(ctx context.Context, pos int64) (Delivery, error) {
	var d Delivery
	err := s.db.NewSelect().Model(&d).Where("pos = ?", pos).Scan(ctx)
	return d, err
}

// Count returns the number of rows.
func (s *Store) Count(ctx context.Context) (int64, error) {
	return s.db.NewSelect().Model((*Delivery)(nil)).Count(ctx)
}
