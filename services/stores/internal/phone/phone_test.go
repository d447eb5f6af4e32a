package phone

import "testing"

func TestE164(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ raw, region, want string }{
		{"+48 512 345 678", "PL", "+48512345678"},
		{"512 345 678", "PL", "+48512345678"},
		{"0048 600 700 800", "US", "+48600700800"},
		{"(11) 98765-4321", "BR", "+5511987654321"},
		{"(415) 555-0132", "US", "+14155550132"},
		{"07911 123456", "GB", "+447911123456"},
		{"+1 415 555 0132", "", "+14155550132"},
		{"512 345 678", "", ""},
		{"12", "US", ""},
		{"not a phone", "US", ""},
		{"", "US", ""},
	} {
		got, ok := E164(c.raw, c.region)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("E164(%q, %q) = %q %v, want %q", c.raw, c.region, got, ok, c.want)
		}
	}
	if !KnownRegion("PL") || KnownRegion("XX") || KnownRegion("pl") {
		t.Error("KnownRegion")
	}
}
