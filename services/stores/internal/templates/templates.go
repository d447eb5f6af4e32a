// Package templates holds the SMS templates of contract §13: the keys, their
// defaults, placeholder validation, rendering, and GSM-7/UCS-2 segmenting.
package templates

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/apitosms/apitosms/libs/events"
)

// Template keys.
const (
	OrderCreated   = "order_created"
	OrderPaid      = "order_paid"
	OrderShipped   = "order_shipped"
	OrderCancelled = "order_cancelled"
	OrderRefunded  = "order_refunded"
	OrderOnHold    = "order_on_hold"
	AdminNewOrder  = "admin_new_order"
)

// Keys lists every template key, in the contract's order.
var Keys = events.StoreTemplateKeys

// Placeholders lists every placeholder name (without braces).
var Placeholders = []string{"shop_name", "order_number", "customer_first_name", "customer_last_name",
	"total", "currency", "status", "tracking_number", "tracking_url", "carrier"}

// MaxRunes bounds a template's text (an SMS of contract §2 is at most 1000).
const MaxRunes = 1000

// Template is one key's setting.
type Template = events.StoreTemplate

// Defaults are the templates of a new store (docs/stores.md lists them).
var Defaults = map[string]Template{
	OrderCreated:   {Enabled: true, Text: "{shop_name}: thank you {customer_first_name}! We received order {order_number} ({total} {currency})."},
	OrderPaid:      {Enabled: true, Text: "{shop_name}: payment for order {order_number} received. We are preparing it."},
	OrderShipped:   {Enabled: true, Text: "{shop_name}: order {order_number} has shipped. {carrier} {tracking_number} {tracking_url}"},
	OrderCancelled: {Enabled: true, Text: "{shop_name}: order {order_number} was cancelled."},
	OrderRefunded:  {Enabled: true, Text: "{shop_name}: order {order_number} was refunded."},
	OrderOnHold:    {Enabled: true, Text: "{shop_name}: order {order_number} is on hold. We will contact you."},
	AdminNewOrder:  {Enabled: true, Text: "{shop_name}: new order {order_number}, {total} {currency}, from {customer_first_name} {customer_last_name}."},
}

// IsKey reports whether k is a template key.
func IsKey(k string) bool {
	_, ok := Defaults[k]
	return ok
}

func isPlaceholder(name string) bool {
	for _, p := range Placeholders {
		if p == name {
			return true
		}
	}
	return false
}

// Validate checks a template text: valid UTF-8, at most MaxRunes, and every
// {name} a known placeholder. A brace that does not open a {word} is text.
func Validate(text string) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("template text must be valid UTF-8")
	}
	if utf8.RuneCountInString(text) > MaxRunes {
		return fmt.Errorf("template text too long (max %d characters)", MaxRunes)
	}
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("template text must not be blank")
	}
	var bad error
	scan(text, func(name string) string {
		if bad == nil && !isPlaceholder(name) {
			if len(name) > 40 {
				name = name[:40]
			}
			bad = fmt.Errorf("unknown placeholder {%s}", name)
		}
		return ""
	}, nil)
	return bad
}

// scan walks text, calling ph for every {word} (letters, digits, '_') and
// lit for the text around them.
func scan(text string, ph func(string) string, out *strings.Builder) {
	for {
		i := strings.IndexByte(text, '{')
		if i < 0 {
			break
		}
		j := i + 1
		for j < len(text) && (text[j] == '_' || text[j] >= 'a' && text[j] <= 'z' || text[j] >= 'A' && text[j] <= 'Z' || text[j] >= '0' && text[j] <= '9') {
			j++
		}
		if j < len(text) && text[j] == '}' && j > i+1 {
			if out != nil {
				out.WriteString(text[:i])
			}
			v := ph(text[i+1 : j])
			if out != nil {
				out.WriteString(v)
			}
			text = text[j+1:]
			continue
		}
		if out != nil {
			out.WriteString(text[:i+1])
		}
		text = text[i+1:]
	}
	if out != nil {
		out.WriteString(text)
	}
}

// Render fills the placeholders of text with vals (missing: empty), then
// collapses the runs of spaces an empty value leaves and trims the ends, so
// "{carrier} {tracking_number}" without tracking leaves no gap.
func Render(text string, vals map[string]string) string {
	var b strings.Builder
	scan(text, func(name string) string { return vals[name] }, &b)
	s := b.String()
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	s = strings.ReplaceAll(s, " .", ".")
	s = strings.ReplaceAll(s, " ,", ",")
	return strings.TrimSpace(s)
}

// Encodings of an SMS.
const (
	GSM7 = "GSM-7"
	UCS2 = "UCS-2"
)

// gsmBasic is the GSM 03.38 default alphabet; gsmExt the characters of its
// extension table, each sent as an escape plus one septet.
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExt = "\f^{}\\[~]|€"
)

// Segments returns how many SMS text takes and its encoding: GSM-7 when
// every character is in the default alphabet or its extension (which count
// two septets), 160 septets in one SMS, 153 per part of a longer one; else
// UCS-2, 70 UTF-16 units in one SMS, 67 per part. A part never splits an
// escape pair or a surrogate pair.
func Segments(text string) (int, string) {
	gsm := true
	var units []int // size of each character in septets or UTF-16 units
	for _, r := range text {
		switch {
		case strings.ContainsRune(gsmBasic, r):
			units = append(units, 1)
		case strings.ContainsRune(gsmExt, r):
			units = append(units, 2)
		default:
			gsm = false
		}
		if !gsm {
			break
		}
	}
	single, part, enc := 160, 153, GSM7
	if !gsm {
		units = units[:0]
		for _, r := range text {
			units = append(units, utf16.RuneLen(r))
		}
		single, part, enc = 70, 67, UCS2
	}
	total := 0
	for _, u := range units {
		total += u
	}
	if total == 0 {
		return 0, enc
	}
	if total <= single {
		return 1, enc
	}
	n, fill := 1, 0
	for _, u := range units {
		if fill+u > part {
			n++
			fill = 0
		}
		fill += u
	}
	return n, enc
}
