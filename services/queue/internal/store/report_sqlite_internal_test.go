package store

import (
	"testing"
	"time"
)

// parseReportTime reads what time.Parse reads from our SQLite layout and
// the driver's (a bound time.Time), and hands anything else to asTime.
func TestParseReportTime(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 12, 2, 5, 6, 7, 0, time.UTC),
		time.Date(2026, 12, 2, 5, 6, 7, 123456789, time.UTC),
		time.Date(2026, 1, 31, 23, 59, 59, 100000000, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 1000, time.UTC),
		time.Date(1999, 12, 31, 12, 0, 0, 999999999, time.FixedZone("x", 2*3600)),
	} {
		for _, text := range []string{at.UTC().Format(sqliteTimeLayout), at.UTC().String()} {
			got, err := parseReportTime(text)
			if err != nil || !got.Equal(at) || got.Location() != time.UTC {
				t.Fatalf("%q: got %v (%v), want %v", text, got, err, at)
			}
		}
	}
	for _, text := range []string{
		"2026-12-02 05:06:07+02:00", "2026-12-02T05:06:07Z", "2026-12-02 05:06:07", "2026-12-02 05:06:07.5+00:00",
		"2026-11-31 05:06:07+00:00", "2026-12-02 25:06:07+00:00", "2026-12-02 05:06:07.+00:00", "2026-12-02 05:06:07.1234567890+00:00",
		"2026-12-0x 05:06:07+00:00", "2026-12-02 05:06:07.25 +0200 X",
	} {
		got, err := parseReportTime(text)
		want, werr := asTime(text)
		if (err == nil) != (werr == nil) || err == nil && !got.Equal(want) {
			t.Fatalf("%q: got %v (%v), want %v (%v)", text, got, err, want, werr)
		}
	}
	if _, err := parseReportTime(int64(1)); err == nil {
		t.Fatal("an integer read as a time")
	}
}
