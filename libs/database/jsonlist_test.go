package database

import (
	"encoding/json"
	"math"
	"testing"
)

func TestJSONIntsEqualsMarshal(t *testing.T) {
	for _, ids := range [][]int64{nil, {}, {0}, {1, -2, 3}, {math.MaxInt64, math.MinInt64}} {
		want, _ := json.Marshal(ids)
		if ids == nil {
			want = []byte("[]")
		}
		if got := JSONInts(ids); got != string(want) {
			t.Errorf("JSONInts(%v) = %s, want %s", ids, got, want)
		}
	}
}
