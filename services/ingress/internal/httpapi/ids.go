package httpapi

import (
	"crypto/rand"
	"encoding/hex"
)

// publishID is a fresh random request id: message hashes and publish ids
// derive from it.
func publishID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
