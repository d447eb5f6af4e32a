package httpapi

import "testing"

func TestParseRange(t *testing.T) {
	t.Parallel()
	const size = 1000
	tests := []struct {
		header            string
		start, length     int64
		ok, unsatisfiable bool
	}{
		{"bytes=0-99", 0, 100, true, false},
		{"bytes=0-", 0, 1000, true, false},
		{"bytes=500-", 500, 500, true, false},
		{"bytes=990-2000", 990, 10, true, false},
		{"bytes=-100", 900, 100, true, false},
		{"bytes=-5000", 0, 1000, true, false},
		{"BYTES = 10-19", 10, 10, true, false},
		{"bytes=999-999", 999, 1, true, false},
		{"bytes=1000-", 0, 0, false, true},
		{"bytes=1000-1001", 0, 0, false, true},
		{"bytes=-0", 0, 0, false, true},
		{"bytes=5-1", 0, 0, false, false},     // invalid: ignored
		{"bytes=0-1,5-6", 0, 0, false, false}, // several ranges: ignored
		{"items=0-1", 0, 0, false, false},
		{"bytes=a-b", 0, 0, false, false},
		{"bytes=-", 0, 0, false, false},
		{"bytes=+1-2", 0, 0, false, false},
		{"bytes", 0, 0, false, false},
	}
	for _, tt := range tests {
		start, length, ok, unsat := parseRange(tt.header, size)
		if start != tt.start || length != tt.length || ok != tt.ok || unsat != tt.unsatisfiable {
			t.Errorf("parseRange(%q) = %d,%d,%v,%v; want %d,%d,%v,%v", tt.header,
				start, length, ok, unsat, tt.start, tt.length, tt.ok, tt.unsatisfiable)
		}
	}
}

func TestETagMatching(t *testing.T) {
	t.Parallel()
	const etag = `"abc"`
	for list, want := range map[string]bool{
		`"abc"`: true, `W/"abc"`: true, `"x", "abc"`: true, `*`: true, `"abd"`: false, `abc`: false,
	} {
		if got := etagListMatches(list, etag); got != want {
			t.Errorf("If-None-Match %s: %v, want %v", list, got, want)
		}
	}
	for ifRange, want := range map[string]bool{
		``: true, `"abc"`: true, `W/"abc"`: false, `Wed, 21 Oct 2015 07:28:00 GMT`: false,
	} {
		if got := ifRangeMatches(ifRange, etag); got != want {
			t.Errorf("If-Range %s: %v, want %v", ifRange, got, want)
		}
	}
}
