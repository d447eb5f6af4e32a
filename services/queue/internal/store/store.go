// Package store keeps the queue's messages table: pending (status 0) and
// handed-out SMS, ordered by their FIFO position; scheduled ones wait in
// the scheduled table until due (scheduled.go). It runs on SQLite and
// PostgreSQL; where the SQL differs, both variants live side by side here.
package store

import (
	"context"
	"database/sql"
	"embed"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/database"
)

// Service names the owner of the tables (SQLite file, migration tables).
const Service = "queue"

//go:embed migrations
var migrations embed.FS

// Message statuses stored in the status column (as in the contract, plus
// StatusScheduled: new, but not due yet, a row of the scheduled table;
// tracking shows it as new).
const (
	StatusScheduled = -1
	StatusNew       = 0
	StatusInitiated = 1
	StatusSent      = 2
	StatusFailed    = 3
)

// Message is one row of the messages table.
type Message struct {
	bun.BaseModel `bun:"table:messages"`

	Pos        int64        `bun:"pos,pk"`
	AccountID  int64        `bun:"account_id,notnull"`
	Phone      string       `bun:"phone,notnull"`
	Text       string       `bun:"text,notnull"`
	Status     int16        `bun:"status,notnull"`
	AcceptedAt time.Time    `bun:"accepted_at,notnull"`
	ClaimedAt  bun.NullTime `bun:"claimed_at"`
	ClaimID    int64        `bun:"claim_id,nullzero"` // the claim it was last handed out under
}

// Store is the queue's storage. It is safe for concurrent use.
type Store struct {
	db        *bun.DB
	pg        bool
	reader    *sql.DB     // tracking reads (UseReader); nil: db
	blankText bool        // blank a message's text once final (SetKeepText)
	reports   reportStmts // the report path's prepared statements (SQLite)
	handOuts  *handOuts   // told accounts' hand-outs (RememberHandOuts); nil: none
}

// New returns the store on db (not migrated: see Migrate).
func New(db *bun.DB) *Store {
	return &Store{db: db, pg: database.IsPostgres(db)}
}

// Migrate creates or updates the queue's tables. (The SQLite connection
// settings for bulk ingestion are in the DSN: libs/database.)
func (s *Store) Migrate(ctx context.Context) error {
	return database.Migrate(ctx, s.db, migrations, Service)
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// DB is the underlying database, for tests and tools.
func (s *Store) DB() *bun.DB { return s.db }

// sqlDB is the database/sql handle: the hot paths bind parameters in the
// driver instead of having bun format values into the SQL text.
func (s *Store) sqlDB() *sql.DB { return s.db.DB }

// placeholders appends n comma-separated parameter markers, numbered from
// first on PostgreSQL ($1, $2, ...), plain ? on SQLite.
func (s *Store) placeholders(b *strings.Builder, first, n int) {
	database.Placeholders(b, s.pg, first, n)
}

// param returns the marker of the i-th (1-based) parameter.
func (s *Store) param(i int) string {
	if s.pg {
		return "$" + strconv.Itoa(i)
	}
	return "?"
}
