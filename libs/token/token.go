// Package token makes API tokens and their digests. A token is 64 lower-case
// hex characters (32 random bytes); only its SHA-256 digest is stored.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// Len is the length of a token.
const Len = 64

// New returns a fresh random token.
func New() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// WellFormed reports whether s has a token's shape, without revealing where
// it differs (every byte is examined).
func WellFormed(s string) bool {
	if len(s) != Len {
		return false
	}
	bad := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
		if !ok {
			bad |= 1
		}
	}
	return bad == 0
}

// Digest is the hex SHA-256 of a token: what is stored and looked up.
func Digest(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// Equal compares two digests (or tokens) in constant time.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
