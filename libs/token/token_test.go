package token_test

import (
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/token"
)

func TestNew(t *testing.T) {
	t.Parallel()
	a, b := token.New(), token.New()
	if len(a) != token.Len || !token.WellFormed(a) {
		t.Errorf("New() = %q, not well formed", a)
	}
	if a == b {
		t.Error("two New() tokens are equal")
	}
}

func TestWellFormed(t *testing.T) {
	t.Parallel()
	ok := strings.Repeat("0123456789abcdef", 4)
	cases := []struct {
		s    string
		want bool
	}{
		{ok, true},
		{"", false},
		{ok[:63], false},
		{ok + "0", false},
		{strings.ToUpper(ok), false},
		{ok[:63] + "g", false},
		{ok[:63] + " ", false},
		{"é" + ok[:62], false},
	}
	for _, c := range cases {
		if got := token.WellFormed(c.s); got != c.want {
			t.Errorf("WellFormed(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}

func TestDigestAndEqual(t *testing.T) {
	t.Parallel()
	// SHA-256 test vectors.
	if got := token.Digest(""); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("Digest(\"\") = %s", got)
	}
	if got := token.Digest("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Digest(\"abc\") = %s", got)
	}
	tok := token.New()
	if !token.Equal(token.Digest(tok), token.Digest(tok)) {
		t.Error("Equal of the same digest = false")
	}
	if token.Equal(token.Digest(tok), token.Digest(token.New())) {
		t.Error("Equal of different digests = true")
	}
	if token.Equal("abc", "abcd") || token.Equal("", "a") {
		t.Error("Equal of different lengths = true")
	}
}
