package batch

import (
	"encoding/json"
	"testing"
	"time"
)

// Each §12 field is judged per item with its own sentence, the same way on
// the fast path (well-typed bodies) and the slow path (item by item).
func TestParseExtras(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	at := func(d time.Duration) string { return `"` + now.Add(d).Format(time.RFC3339) + `"` }
	const base = `"phone":"1234567890","message":"hi"`
	cases := []struct {
		name    string
		fields  string
		want    Valid // SendAt, ValidUntil, High
		wantErr string
	}{
		{"none", ``, Valid{}, ""},
		{"nulls are absent", `,"sendAt":null,"ttl":null,"validUntil":null,"priority":null`, Valid{}, ""},
		{"sendAt ahead", `,"sendAt":` + at(time.Hour), Valid{SendAt: ms(time.Hour)}, ""},
		{"sendAt offset", `,"sendAt":"2026-12-01T14:00:00+02:00"`, Valid{SendAt: ms(0)}, ""},
		{"sendAt past is due", `,"sendAt":` + at(-time.Hour), Valid{SendAt: ms(-time.Hour)}, ""},
		{"sendAt 30 days", `,"sendAt":` + at(MaxSendAhead), Valid{SendAt: ms(MaxSendAhead)}, ""},
		{"sendAt 30 days and a second", `,"sendAt":` + at(MaxSendAhead+time.Second), Valid{}, ErrInvalidSendAt},
		{"sendAt not a time", `,"sendAt":"tomorrow"`, Valid{}, ErrInvalidSendAt},
		{"sendAt number", `,"sendAt":1767268800`, Valid{}, ErrInvalidSendAt},
		{"ttl", `,"ttl":60`, Valid{ValidUntil: ms(time.Minute)}, ""},
		{"ttl max", `,"ttl":2592000`, Valid{ValidUntil: ms(30 * 24 * time.Hour)}, ""},
		{"ttl too short", `,"ttl":59`, Valid{}, ErrInvalidTTL},
		{"ttl too long", `,"ttl":2592001`, Valid{}, ErrInvalidTTL},
		{"ttl fraction", `,"ttl":60.5`, Valid{}, ErrInvalidTTL},
		{"ttl string", `,"ttl":"60"`, Valid{}, ErrInvalidTTL},
		{"ttl ends before sendAt", `,"sendAt":` + at(2*time.Hour) + `,"ttl":3600`, Valid{}, ErrInvalidTTL},
		{"ttl and validUntil", `,"ttl":60,"validUntil":` + at(time.Hour), Valid{}, ErrInvalidTTL},
		{"validUntil", `,"validUntil":` + at(time.Hour), Valid{ValidUntil: ms(time.Hour)}, ""},
		{"validUntil past", `,"validUntil":` + at(-time.Second), Valid{}, ErrInvalidValidUntil},
		{"validUntil before sendAt", `,"sendAt":` + at(2*time.Hour) + `,"validUntil":` + at(time.Hour), Valid{}, ErrInvalidValidUntil},
		{"validUntil after sendAt", `,"sendAt":` + at(time.Hour) + `,"validUntil":` + at(2*time.Hour), Valid{SendAt: ms(time.Hour), ValidUntil: ms(2 * time.Hour)}, ""},
		{"validUntil too far", `,"validUntil":` + at(MaxValidUntilFar+time.Second), Valid{}, ErrInvalidValidUntil},
		{"validUntil garbage", `,"validUntil":"2026-13-01T00:00:00Z"`, Valid{}, ErrInvalidValidUntil},
		{"high", `,"priority":"high"`, Valid{High: true}, ""},
		{"normal", `,"priority":"normal"`, Valid{}, ""},
		{"priority upper case", `,"priority":"HIGH"`, Valid{}, ErrInvalidPriority},
		{"priority number", `,"priority":1`, Valid{}, ErrInvalidPriority},
		{"phone checked first", `,"priority":"x","phone":"1"`, Valid{}, ErrInvalidPhone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := `{` + base + tc.fields + `}`
			res, err := ParseAt([]byte(body), 1000, now)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.wantErr != "" {
				if len(res.Valid) != 0 || len(res.Errors) != 1 || res.Errors[0].Error != tc.wantErr {
					t.Fatalf("want error %q, got %+v", tc.wantErr, res)
				}
			} else {
				if len(res.Valid) != 1 {
					t.Fatalf("want one valid item, got %+v", res)
				}
				got := res.Valid[0]
				if got.SendAt != tc.want.SendAt || got.ValidUntil != tc.want.ValidUntil || got.High != tc.want.High {
					t.Fatalf("got sendAt %d validUntil %d high %v, want %+v", got.SendAt, got.ValidUntil, got.High, tc.want)
				}
			}
			// Both paths agree on the item.
			var typed typedItem
			if err := json.Unmarshal([]byte(body), &typed); err != nil {
				t.Fatalf("typed: %v", err)
			}
			fv, fmsg := checkTyped(typed, now)
			sv, smsg := check([]byte(body), now)
			if fmsg != smsg || fv != sv {
				t.Fatalf("fast path %+v %q, slow path %+v %q", fv, fmsg, sv, smsg)
			}
		})
	}
}

// A batch mixing items with and without the fields keeps each item's own
// verdict and index.
func TestParseExtrasPerItem(t *testing.T) {
	t.Parallel()
	body := `[{"phone":"1234567","message":"a"},{"phone":"1234567","message":"b","ttl":5},{"phone":"1234567","message":"c","priority":"high"}]`
	res, err := Parse([]byte(body), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Valid) != 2 || res.Valid[0].Index != 0 || res.Valid[0].High || res.Valid[1].Index != 2 || !res.Valid[1].High {
		t.Fatalf("valid = %+v", res.Valid)
	}
	if len(res.Errors) != 1 || res.Errors[0].Index != 1 || res.Errors[0].Error != ErrInvalidTTL {
		t.Fatalf("errors = %+v", res.Errors)
	}
}
