// Package phone turns the phones shops write (any national or
// international format) into E.164 with libphonenumber's rules
// (github.com/nyaruka/phonenumbers, a maintained Go port of Google's
// library: hand-written rules would get trunk prefixes and lengths wrong).
package phone

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// E164 parses raw as a number of region (ISO 3166 alpha-2; a number written
// with + or 00 needs none) and returns it as E.164, or false when it is not
// a valid number.
func E164(raw, region string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 64 {
		return "", false
	}
	if strings.HasPrefix(raw, "00") {
		raw = "+" + raw[2:]
	}
	n, err := phonenumbers.Parse(raw, strings.ToUpper(region))
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}

// KnownRegion reports whether region is a region libphonenumber knows.
func KnownRegion(region string) bool {
	if len(region) != 2 || strings.ToUpper(region) != region {
		return false
	}
	return phonenumbers.GetCountryCodeForRegion(region) != 0
}
