package timestamp_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/timestamp"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	plus3 := time.FixedZone("+03", 3*3600)
	cases := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 26, 12, 0, 0, 0, time.UTC), "2026-01-26T12:00:00+00:00"},
		{time.Date(2026, 1, 26, 15, 0, 0, 999, plus3), "2026-01-26T12:00:00+00:00"},
		{time.Date(2026, 1, 1, 1, 30, 0, 0, plus3), "2025-12-31T22:30:00+00:00"},
	}
	for _, c := range cases {
		if got := timestamp.Format(c.in); got != c.want {
			t.Errorf("Format(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTimeJSON(t *testing.T) {
	t.Parallel()
	type doc struct {
		At timestamp.Time `json:"at"`
	}
	b, err := json.Marshal(doc{})
	if err != nil || string(b) != `{"at":null}` {
		t.Errorf("zero marshals to %s, %v", b, err)
	}
	at := time.Date(2026, 1, 26, 15, 0, 0, 0, time.FixedZone("", 3*3600))
	b, err = json.Marshal(doc{At: timestamp.Time{Time: at}})
	if err != nil || string(b) != `{"at":"2026-01-26T12:00:00+00:00"}` {
		t.Errorf("marshals to %s, %v", b, err)
	}

	for _, in := range []string{`"2026-01-26T12:00:00+00:00"`, `"2026-01-26T12:00:00Z"`, `"2026-01-26T15:00:00+03:00"`, `"2026-01-26T12:00:00.000Z"`} {
		var got timestamp.Time
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Errorf("Unmarshal(%s): %v", in, err)
			continue
		}
		if !got.Equal(at) || got.Location() != time.UTC {
			t.Errorf("Unmarshal(%s) = %v", in, got.Time)
		}
	}
	got := timestamp.Time{Time: at}
	if err := json.Unmarshal([]byte(`null`), &got); err != nil || !got.IsZero() {
		t.Errorf("Unmarshal(null) = %v, %v", got.Time, err)
	}
	for _, bad := range []string{`"2026-01-26"`, `"yesterday"`, `12`} {
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("Unmarshal(%s): want error", bad)
		}
	}
}

func TestMonth(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 26, 12, 0, 0, 0, time.UTC), "2026-01"},
		{time.Date(2026, 1, 31, 23, 30, 0, 0, time.FixedZone("", -2*3600)), "2026-02"},
		{time.Date(2026, 3, 1, 1, 0, 0, 0, time.FixedZone("", 3*3600)), "2026-02"},
	}
	for _, c := range cases {
		if got := timestamp.Month(c.in); got != c.want {
			t.Errorf("Month(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
