package store

import "strings"

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

// HandOutsKept is how many hand-outs s remembers (RememberHandOuts).
func HandOutsKept(s *Store) int {
	if s.handOuts == nil {
		return 0
	}
	s.handOuts.mu.Lock()
	defer s.handOuts.mu.Unlock()
	return len(s.handOuts.byPos)
}

// RememberFewHandOuts is RememberHandOuts keeping at most n.
func RememberFewHandOuts(s *Store, tell func(int64) bool, n int) {
	s.RememberHandOuts(tell)
	if s.handOuts != nil {
		s.handOuts.ring = make([]handOutKey, n)
	}
}
