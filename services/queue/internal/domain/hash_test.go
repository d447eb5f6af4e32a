package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func TestReplacementHash(t *testing.T) {
	sum := sha256.Sum256([]byte("a1b2c3d4e5f67890:1025"))
	want := hex.EncodeToString(sum[:])[:16]
	if got := ReplacementHash("a1b2c3d4e5f67890", 1025); got != want {
		t.Fatalf("ReplacementHash = %q, want %q", got, want)
	}
	if ReplacementHash("a1b2c3d4e5f67890", 1026) == want {
		t.Fatal("replacement must depend on the position")
	}
}
