package web

import "testing"

func TestCSVSafeAndMask(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"=1+2": "'=1+2", "+1555": "'+1555", "-x": "'-x", "@SUM": "'@SUM", "hello": "hello", "": ""} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
	tok := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if m := mask(tok); m != "0123••••••••••••cdef" {
		t.Errorf("mask = %q", m)
	}
}

func TestDrawChart(t *testing.T) {
	t.Parallel()
	ch := drawChart([]day{{Date: "2026-12-01", Sent: 4, Failed: 2}, {Date: "2026-12-02"}})
	if ch.Max != 4 || len(ch.Bars) != 2 || ch.Bars[0].SentH != 110 || ch.Bars[0].FailH != 55 || ch.Bars[1].SentH != 0 {
		t.Fatalf("chart = %+v", ch)
	}
	if ch.Label != "Last 30 days: 4 sent, 2 failed" {
		t.Fatalf("label %q", ch.Label)
	}
}
