// Package store keeps the releases service's metadata: one row per published
// APK version (release_versions) and a singleton row naming the active one
// (release_active). The APK bytes themselves live in the object store (see
// internal/blob); a row names its object.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/database"
)

// Service names the tables' owner (SQLite file, migration tables).
const Service = "releases"

//go:embed migrations
var migrations embed.FS

// ErrNotFound is returned when no published version has the asked code.
var ErrNotFound = errors.New("version not found")

// Version is one published APK version.
type Version struct {
	bun.BaseModel `bun:"table:release_versions"`

	VersionCode  int64     `bun:"version_code,pk"`
	Version      string    `bun:"version"`
	ReleaseNotes string    `bun:"release_notes"`
	FileSize     int64     `bun:"file_size"`
	SHA256       string    `bun:"sha256"` // lower-case hex
	ObjectName   string    `bun:"object_name"`
	PublishedAt  time.Time `bun:"published_at"`
	Downloads    int64     `bun:"downloads"`
	IsActive     bool      `bun:"is_active,scanonly"` // computed from release_active
}

// Store is the releases metadata in one bun database (SQLite or PostgreSQL).
type Store struct{ db *bun.DB }

// Open migrates db and returns its store.
func Open(ctx context.Context, db *bun.DB) (*Store, error) {
	if err := database.Migrate(ctx, db, migrations, Service); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// selectVersions selects versions with their computed is_active flag.
func (s *Store) selectVersions(dst any) *bun.SelectQuery {
	return s.db.NewSelect().Model(dst).
		ColumnExpr("v.*").
		ColumnExpr("(a.version_code IS NOT NULL) AS is_active").
		ModelTableExpr("release_versions AS v").
		Join("LEFT JOIN release_active AS a ON a.version_code = v.version_code")
}

// Insert publishes v (not active). It reports false, and changes nothing,
// when a version with the same code already exists; the primary key makes
// this exact under concurrent inserts.
func (s *Store) Insert(ctx context.Context, v *Version) (bool, error) {
	res, err := s.db.NewInsert().Model(v).
		On("CONFLICT (version_code) DO NOTHING").
		Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("insert version: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// Exists reports whether a version with this code is published.
func (s *Store) Exists(ctx context.Context, code int64) (bool, error) {
	return s.db.NewSelect().Model((*Version)(nil)).Where("version_code = ?", code).Exists(ctx)
}

// Get returns the version with this code, or ErrNotFound.
func (s *Store) Get(ctx context.Context, code int64) (Version, error) {
	var v Version
	err := s.selectVersions(&v).Where("v.version_code = ?", code).Scan(ctx)
	return v, notFound(err)
}

// Active returns the active version, or ErrNotFound when none is.
func (s *Store) Active(ctx context.Context) (Version, error) {
	var v Version
	err := s.selectVersions(&v).Where("a.id = 1").Scan(ctx)
	return v, notFound(err)
}

// List returns every published version, versionCode descending.
func (s *Store) List(ctx context.Context) ([]Version, error) {
	var vs []Version
	if err := s.selectVersions(&vs).OrderExpr("v.version_code DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	return vs, nil
}

// Activate makes the version with this code the active one, in a single
// statement on the singleton row release_active(id = 1): at any moment at
// most one version is active, and once one was activated there is always
// exactly one until it is unpublished. Returns ErrNotFound for an unknown code.
func (s *Store) Activate(ctx context.Context, code int64) error {
	res, err := s.db.NewRaw(
		"INSERT INTO release_active (id, version_code) "+
			"SELECT 1, version_code FROM release_versions WHERE version_code = ? "+
			"ON CONFLICT (id) DO UPDATE SET version_code = excluded.version_code", code).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("activate version: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Delete unpublishes the version with this code and returns it (its object
// is the caller's to delete). An active version stops being active.
// Returns ErrNotFound for an unknown code.
func (s *Store) Delete(ctx context.Context, code int64) (Version, error) {
	var v Version
	res, err := s.db.NewDelete().Model(&v).
		Where("version_code = ?", code).
		Returning("version_code, version, object_name").
		Exec(ctx, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return v, ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("delete version: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return v, ErrNotFound
	}
	return v, nil
}

// CountDownload adds one to the version's download counter, atomically in
// the database (exact across replicas). An unknown code changes nothing.
func (s *Store) CountDownload(ctx context.Context, code int64) error {
	_, err := s.db.NewUpdate().Model((*Version)(nil)).
		Set("downloads = downloads + 1").
		Where("version_code = ?", code).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("count download: %w", err)
	}
	return nil
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("select version: %w", err)
	}
	return nil
}
