// Package secret makes, seals and uses webhook signing secrets.
//
// A signing secret must be recoverable (it signs every delivery), so it
// cannot be stored as a digest like an API token. It is sealed with
// AES-256-GCM (libs/keys) under the KeyName key of the deployment's keys
// bucket, so a copy of the database alone reveals no secret.
package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// Prefix starts every secret shown to a merchant.
const Prefix = "whsec_"

// Size is the number of random bytes of a secret.
const Size = 32

// Generate returns a new secret: "whsec_" + base64 of 32 random bytes.
func Generate() string {
	b := make([]byte, Size)
	_, _ = rand.Read(b)
	return Prefix + base64.StdEncoding.EncodeToString(b)
}

// Key returns the HMAC key of a secret (its decoded bytes).
func Key(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimPrefix(s, Prefix))
}

// Sign returns the Standard Webhooks v1 signature of one delivery:
// "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// KeyName is the sealing key's entry in the deployment's keys bucket
// (libs/keys): secrets are sealed at rest so a copy of the database alone
// reveals none.
const KeyName = "webhook-secrets"
