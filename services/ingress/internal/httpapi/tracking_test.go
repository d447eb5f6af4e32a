package httpapi

import (
	"errors"
	"testing"

	"github.com/apitosms/apitosms/libs/apperr"
)

func TestParseHashes(t *testing.T) {
	cases := []struct {
		body string
		n    int
		err  error
	}{
		{`{"hashes":["a","b"]}`, 2, nil},
		{` {"hashes":[ "0123456789abcdef" ]} `, 1, nil},
		{`{"hashes":[]}`, 0, errNoHashes},
		{`{"hashes":"a"}`, 0, errHashesNotArray},
		{`{"hashes":[1]}`, 0, errHashesNotArray},
		{`{"hashes":[null]}`, 0, errHashesNotArray},
		{`{"hashes":null}`, 0, errHashesNotArray},
		{`["a"]`, 0, errHashesNotArray},
		{`{}`, 0, errHashesNotArray},
		{`{"hashes":[`, 0, apperr.ErrInvalidJSON},
		{``, 0, apperr.ErrInvalidJSON},
	}
	for _, c := range cases {
		got, err := parseHashes([]byte(c.body))
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%q: err %v, want %v", c.body, err, c.err)
			}
			continue
		}
		if err != nil || len(got) != c.n {
			t.Errorf("%q: %v, %v; want %d hashes", c.body, got, err, c.n)
		}
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"=1+2": "'=1+2", "+33": "'+33", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\rx": "'\rx",
		"hello": "hello", "": "", "a=b": "a=b", "'quoted": "'quoted",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWantsCSV(t *testing.T) {
	for accept, want := range map[string]bool{
		"text/csv": true, "TEXT/CSV; q=0.9": true, "application/json, text/csv;q=0.5": true,
		"": false, "application/json": false, "*/*": false, "text/csvx": false,
	} {
		if got := wantsCSV(accept); got != want {
			t.Errorf("wantsCSV(%q) = %v", accept, got)
		}
	}
}

func TestParseCountAndStatus(t *testing.T) {
	for s, want := range map[string]int{"1": 1, "+7": 7, "500": 500, "99999999999999999999999": 500} {
		if n, ok := parseCount(s); !ok || n != want {
			t.Errorf("parseCount(%q) = %d, %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "0", "-1", "x", "1.5", "+", " 1"} {
		if _, ok := parseCount(s); ok {
			t.Errorf("parseCount(%q) accepted", s)
		}
	}
	for s, want := range map[string]int{"new": 0, "Sent": 2, "3": 3, "cancelled": 5, "4": 4} {
		if st, ok := parseStatusName(s); !ok || st != want {
			t.Errorf("parseStatusName(%q) = %d, %v", s, st, ok)
		}
	}
	for _, s := range []string{"", "6", "-1", "done", "02"} {
		if _, ok := parseStatusName(s); ok {
			t.Errorf("parseStatusName(%q) accepted", s)
		}
	}
}

func TestParseQueryTime(t *testing.T) {
	got, err := parseQueryTime(true, "2026-01-26T12:00:00 01:00", errInvalidFrom)
	if err != nil || got.Format("2006-01-02T15:04:05Z07:00") != "2026-01-26T11:00:00Z" {
		t.Fatalf("unescaped plus: %v, %v", got, err)
	}
	if got, err := parseQueryTime(false, "", errInvalidFrom); got != nil || err != nil {
		t.Fatalf("absent: %v, %v", got, err)
	}
	for _, bad := range []string{"", "2026-01-26", "yesterday", "2026-01-26T12:00:00"} {
		if _, err := parseQueryTime(true, bad, errInvalidFrom); !errors.Is(err, errInvalidFrom) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
