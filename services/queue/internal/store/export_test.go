package store

import "strings"

// ClaimSQLite is the SQLite claim statement, for plan tests.
const ClaimSQLite = claimSQLite

// ReportSQL is the SQL updating n reported messages found by column, for
// plan tests.
func (s *Store) ReportSQL(column string, n int) string {
	var b strings.Builder
	return s.reportSQL(&b, column, n)
}
