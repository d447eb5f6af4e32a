package database

import "strconv"

// JSONInts is ids as a JSON array ("[1,2,3]"): how a list of any length
// binds as one parameter of a prepared SQLite statement, read back with
// json_each (PostgreSQL takes the slice itself, as an array).
func JSONInts(ids []int64) string {
	b := make([]byte, 0, 2+12*len(ids))
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}
