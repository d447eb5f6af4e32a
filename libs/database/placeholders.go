package database

import (
	"strconv"
	"strings"
)

// Placeholders writes n comma-separated parameter markers of a raw SQL
// statement (database/sql, not bun's formatter) to b: $first, $first+1, ...
// on PostgreSQL (pg), a plain ? each on SQLite.
func Placeholders(b *strings.Builder, pg bool, first, n int) {
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if pg {
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(first + i))
		} else {
			b.WriteByte('?')
		}
	}
}
