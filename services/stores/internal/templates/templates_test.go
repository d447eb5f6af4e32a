package templates

import (
	"slices"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		text string
		ok   bool
	}{
		{"{shop_name}: order {order_number} shipped {tracking_url}", true},
		{"Hi {customer_first_name} {customer_last_name}, {total} {currency} {status} {carrier} {tracking_number}", true},
		{"braces { alone } and {} and {not closed", true},
		{"{customer_name}", false},
		{"{Shop_Name}", false},
		{"   ", false},
		{strings.Repeat("a", MaxRunes+1), false},
		{strings.Repeat("ä", MaxRunes), true},
		{"bad \xff utf8", false},
	} {
		if err := Validate(c.text); (err == nil) != c.ok {
			t.Errorf("Validate(%.30q) = %v, want ok %v", c.text, err, c.ok)
		}
	}
	for _, k := range Keys {
		if err := Validate(Defaults[k].Text); err != nil {
			t.Errorf("default %s: %v", k, err)
		}
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	vals := map[string]string{"shop_name": "Loja", "order_number": "#7", "carrier": "", "tracking_number": ""}
	if got := Render(Defaults[OrderShipped].Text, vals); got != "Loja: order #7 has shipped." {
		t.Errorf("shipped without tracking: %q", got)
	}
	if got := Render("{shop_name} {unknown} {x", vals); got != "Loja {x" {
		t.Errorf("got %q", got)
	}
	// A value is never re-read as a placeholder.
	if got := Render("{shop_name}", map[string]string{"shop_name": "{order_number}"}); got != "{order_number}" {
		t.Errorf("got %q", got)
	}
}

func TestSegments(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		text string
		n    int
		enc  string
	}{
		{"", 0, GSM7},
		{strings.Repeat("a", 160), 1, GSM7},
		{strings.Repeat("a", 161), 2, GSM7},
		{strings.Repeat("a", 306), 2, GSM7},
		{strings.Repeat("a", 307), 3, GSM7},
		{strings.Repeat("€", 80), 1, GSM7},                                   // 160 septets
		{strings.Repeat("€", 81), 2, GSM7},                                   // 162
		{strings.Repeat("a", 152) + "€" + strings.Repeat("a", 8), 2, GSM7},   // the escape pair is not split: 152 | 2+8
		{strings.Repeat("a", 151) + "€" + strings.Repeat("a", 153), 2, GSM7}, // 306 septets: 153 + 153
		{strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152), 3, GSM7}, // 306 septets, but € moves to part 2
		{"Zamówienie", 1, UCS2},
		{strings.Repeat("ł", 70), 1, UCS2},
		{strings.Repeat("ł", 71), 2, UCS2},
		{strings.Repeat("ł", 134), 2, UCS2},
		{strings.Repeat("ł", 135), 3, UCS2},
		{strings.Repeat("😀", 35), 1, UCS2}, // 70 UTF-16 units
		{strings.Repeat("😀", 36), 2, UCS2},
		{"ÄÖÑÜäöñüà@£$¥èéùìòÇ", 1, GSM7},
	} {
		n, enc := Segments(c.text)
		if n != c.n || enc != c.enc {
			t.Errorf("Segments(%.20q…) = %d %s, want %d %s", c.text, n, enc, c.n, c.enc)
		}
	}
}

// Keys (declared in libs/events, where the console reads them too) are
// this package's constants, in the contract's order.
func TestKeysAreTheConstants(t *testing.T) {
	t.Parallel()
	want := []string{OrderCreated, OrderPaid, OrderShipped, OrderCancelled, OrderRefunded, OrderOnHold, AdminNewOrder}
	if !slices.Equal(Keys, want) {
		t.Errorf("Keys = %v, want %v", Keys, want)
	}
	for _, k := range Keys {
		if _, ok := Defaults[k]; !ok {
			t.Errorf("no default for %s", k)
		}
	}
}
