package store

import (
	"strings"
	"time"
)

// The report path's two large statements on PostgreSQL take their rows as
// arrays, so their text is fixed: pgx prepares each once per connection and
// PostgreSQL plans it once, where a list of n placeholders was a new
// statement for every n (up to reportChunk), prepared (a round trip) and
// planned with n constants each time. Planning was about a tenth of
// PostgreSQL's CPU in the distributed drain (docs/benchmarks.md,
// 2026-12-02 session 4).

// insertOutcomesPostgres is insertOutcomes on PostgreSQL: positions,
// statuses, devices (empty for none: stored NULL) and times, one array each.
const insertOutcomesPostgres = `INSERT INTO outcomes (pos, status, device, finished_at)
SELECT u.pos, u.status, NULLIF(u.device, ''), u.at
FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::timestamptz[]) AS u(pos, status, device, at)
ON CONFLICT DO NOTHING RETURNING pos`

// outcomesArrays are insertOutcomesPostgres's arguments for reports.
func outcomesArrays(reports []Report) []any {
	pos := make([]int64, len(reports))
	status := make([]int16, len(reports))
	device := make([]string, len(reports))
	at := make([]time.Time, len(reports))
	for i, r := range reports {
		pos[i], status[i], device[i], at[i] = r.Pos, int16(r.Status), r.Device, r.At.UTC() //nolint:gosec // G115: a status fits
	}
	return []any{pos, status, device, at}
}

// positionsIn appends to b, which ends with a column, the condition that it
// is one of positions (int64 values), and returns the arguments: one
// bigint[] on PostgreSQL, a placeholder list on SQLite.
func (s *Store) positionsIn(b *strings.Builder, positions []any) []any {
	if s.pg {
		ints := make([]int64, len(positions))
		for i, p := range positions {
			ints[i] = p.(int64)
		}
		b.WriteString(" = ANY($1::bigint[])")
		return []any{ints}
	}
	b.WriteString(" IN (")
	s.placeholders(b, 1, len(positions))
	b.WriteByte(')')
	return positions
}
