// Package timestamp formats times as the contract wants them: RFC 3339 in
// UTC with a numeric offset, "2026-01-26T12:00:00+00:00" (never "Z").
package timestamp

import (
	"time"
)

// Layout is the contract's timestamp layout.
const Layout = "2006-01-02T15:04:05-07:00"

// Format renders t in UTC with the contract's layout.
func Format(t time.Time) string { return t.UTC().Format(Layout) }

// Time marshals to and from JSON in the contract's layout; the zero time
// marshals as null.
type Time struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + Format(t.Time) + `"`), nil
}

// UnmarshalJSON accepts any RFC 3339 time, or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	v, err := time.Parse(`"`+time.RFC3339Nano+`"`, string(b))
	if err != nil {
		return err
	}
	t.Time = v.UTC()
	return nil
}

// Month is the quota month of t: "2026-01", calendar month in UTC.
func Month(t time.Time) string { return t.UTC().Format("2006-01") }
