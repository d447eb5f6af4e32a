package store

import (
	"context"
	"strings"
)

// Ahead is what ReadAhead read, for tests.
type Ahead = map[int64]*reportedRow

// ReadAhead is readAhead, for tests.
func (s *Store) ReadAhead(ctx context.Context, reports []Report, tell func(int64) bool) Ahead {
	return s.readAhead(ctx, reports, tell)
}

// RecordReportsAhead is RecordReports with rows read ahead earlier, for
// tests that change them in between (SQLite: one shared transaction).
func (g *ClaimGroup) RecordReportsAhead(ctx context.Context, reports []Report, tell func(int64) bool, ahead Ahead) (Recorded, error) {
	if g.st.pg {
		return g.st.RecordReports(ctx, reports, tell)
	}
	j := &claimJob{ctx: ctx, reports: reports, tell: tell, ahead: ahead}
	if err := g.b.Do(ctx, j); err != nil {
		return Recorded{}, err
	}
	return j.recorded, j.err
}

// ClaimSQLite is the SQLite claim statement, for plan tests.
const ClaimSQLite = claimSQLite

// ReportSQL is the SQL updating n reported positions on PostgreSQL, for plan tests.
func (s *Store) ReportSQL(n int) string {
	var b strings.Builder
	return s.reportSQL(&b, n)
}

// The report path's SQLite statements reading or writing messages by a
// JSON array of positions (the last parameter), for plan tests.
var ReportStatementsSQLite = map[string]string{
	"final": finalSQLite, "narrow": narrowReportedSQLite, "wide": wideReportedSQLite, "blank": blankSQLite,
}

// Extras SQL, for plan tests.
const (
	ExpireProbeSQL          = expireProbeSQLite
	ExpireSQL               = expireSQLite
	ExpireScheduledProbeSQL = expireScheduledProbe
)

// The picks of scheduled rows and the promote probe, for plan tests.
func (s *Store) PickDueSQL() string      { return s.pickDue() }
func (s *Store) PickEndedSQL() string    { return s.pickEnded() }
func (s *Store) PromoteProbeSQL() string { return s.promoteProbe() }

// OldestWaitingSQL finds the oldest waiting message, for plan tests.
const OldestWaitingSQL = oldestWaitingSQL

// Migrations are the embedded migrations, for migration tests.
var Migrations = migrations
