// Package auth holds the console's sign-in machinery: argon2id password
// hashes, sessions in a NATS KV bucket shared by every replica, sign-in
// throttling in another, and the sealing of API tokens.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's first recommended set (19 MiB, 2 passes, one
// lane), light enough for a 2-core server signing in a few merchants a
// second. They are stored in every hash, so raising them later keeps old
// hashes verifiable.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// MinPasswordLen and MaxPasswordLen bound a console password.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 256
)

// HashPassword returns the PHC-style argon2id hash of pw
// ($argon2id$v=19$m=...,t=...,p=...$salt$key).
func HashPassword(pw string) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// CheckPassword reports whether pw matches hash (constant-time compare).
func CheckPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked when no account has the email, so an unknown email
// costs as much time as a wrong password.
var dummyHash = HashPassword("no account has this password")

// CheckNobody spends the time of one password check.
func CheckNobody(pw string) { _ = CheckPassword(dummyHash, pw) }

// ErrWeakPassword: the password is too short or too long.
var ErrWeakPassword = errors.New("password must be 10 to 256 characters")
