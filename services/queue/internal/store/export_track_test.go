package store

import "strings"

// HistorySQL is History's statement with statuses filter values and
// (optionally) a phone, for plan tests.
func HistorySQL(s *Store, statuses int, phone bool) string {
	q := HistoryQuery{AccountID: 1, Before: 100, Limit: 10, Statuses: make([]int, statuses)}
	if phone {
		q.Phone = "+1555"
	}
	sql, _ := s.historySQL(q)
	return sql
}

// LookupSQL is Lookup's statement for n positions, for plan tests.
func LookupSQL(s *Store, n int) string {
	var b strings.Builder
	return s.lookupSQL(&b, n)
}
