// Package domain holds the queue's rules that do not depend on storage or
// transport.
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// HashLen is the length of a message hash: 16 lower-case hex characters.
const HashLen = 16

// ReplacementHash is the hash a message is stored under when its own hash
// was already taken by another message (a random collision, astronomically
// rare): the first 16 hex characters of SHA-256(hash + ":" + pos), where pos
// is the message's FIFO position (events.Position).
//
// If the replacement is taken too, the rule is applied again to the
// replacement: h1 = ReplacementHash(h, pos), h2 = ReplacementHash(h1, pos), ...
// The status service applies exactly the same rule, so both services agree
// on the hash a phone reports.
func ReplacementHash(hash string, pos int64) string {
	var buf [64]byte
	b := append(buf[:0], hash...)
	b = append(b, ':')
	b = strconv.AppendInt(b, pos, 10)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:HashLen/2])
}
