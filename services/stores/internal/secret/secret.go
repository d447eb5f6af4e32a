// Package secret seals store signing secrets at rest and verifies the
// platforms' signatures.
//
// A store's secret must be recoverable (every delivery is verified with
// it), so it cannot be kept as a digest. It is sealed with AES-256-GCM
// (libs/keys) under the KeyName key of the deployment's keys bucket, so a
// copy of the database alone reveals no secret.
package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// KeyName is the sealing key's entry in the deployment's keys bucket
// (libs/keys): secrets are sealed at rest so a copy of the database alone
// reveals none.
const KeyName = "store-secrets"

// Generate returns a new secret: base64 of 32 random bytes (for platforms
// that let the merchant type one, WooCommerce).
func Generate() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Verify reports whether sig (base64) is the HMAC-SHA256 of body under
// secret, compared in constant time: the construction of both Shopify's
// X-Shopify-Hmac-Sha256 and WooCommerce's X-WC-Webhook-Signature.
func Verify(secret string, body []byte, sig string) bool {
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	return hmac.Equal(got, Sign(secret, body))
}

// Sign returns the raw HMAC-SHA256 of body under secret.
func Sign(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}
