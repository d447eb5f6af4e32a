// Package secret seals store signing secrets at rest and verifies the
// platforms' signatures.
//
// A store's secret must be recoverable (every delivery is verified with
// it), so it cannot be kept as a digest. It is sealed with AES-256-GCM under
// a key kept in the deployment's keys bucket, so a copy of the database
// alone reveals no secret.
package secret

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
)

// keyName is the sealing key's entry in the keys bucket.
const keyName = "store-secrets"

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

// Sealer encrypts secrets for storage.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a sealer under a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Load returns the sealer of the deployment, creating its key in the keys
// bucket on first use (every replica then reads the same key).
func Load(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Sealer, error) {
	kv, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "apitosms deployment keys; losing them changes every message hash",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("keys bucket: %w", err)
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	var key []byte
	err = broker.Ensure(ctx, "store secret key", func(ctx context.Context) error {
		if _, err := kv.Create(ctx, keyName, fresh); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		entry, err := kv.Get(ctx, keyName)
		if err != nil {
			return err
		}
		key = entry.Value()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store secret key: %w", err)
	}
	return NewSealer(key)
}

// Seal encrypts a secret (random nonce), base64 for a text column.
func (s *Sealer) Seal(secret string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(secret), nil))
}

// Open decrypts a sealed secret.
func (s *Sealer) Open(sealed string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errors.New("sealed secret malformed")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return "", errors.New("sealed secret does not open under this deployment's key")
	}
	return string(plain), nil
}
