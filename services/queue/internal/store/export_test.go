package store

import "strings"

// ClaimSQLite is the SQLite claim statement, for plan tests.
const ClaimSQLite = claimSQLite

// ReportSQL is the SQL updating n reported positions, for plan tests.
func (s *Store) ReportSQL(n int) string {
	var b strings.Builder
	return s.reportSQL(&b, n)
}

// Extras SQL, for plan tests.
const (
	PromoteProbeSQL = promoteProbeSQLite
	ExpireProbeSQL  = expireProbeSQLite
	PromoteSQL      = promoteSQLite
	ExpireSQL       = expireSQLite
)
