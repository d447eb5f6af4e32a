// Package secret makes, seals and uses webhook signing secrets.
//
// A signing secret must be recoverable (it signs every delivery), so it
// cannot be stored as a digest like an API token. It is sealed with
// AES-256-GCM under a key kept in the deployment's keys bucket (KV, file
// storage), so a copy of the database alone reveals no secret.
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
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
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

// keyName is the sealing key's entry in the keys bucket.
const keyName = "webhook-secrets"

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
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		// Same configuration as libs/hashid, which shares the bucket.
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "apitosms deployment keys; losing them changes every message hash",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    max(replicas, 1),
		})
	}
	if err != nil {
		return nil, fmt.Errorf("keys bucket: %w", err)
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	if _, err := kv.Create(ctx, keyName, fresh); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("create webhook secret key: %w", err)
	}
	entry, err := kv.Get(ctx, keyName)
	if err != nil {
		return nil, fmt.Errorf("read webhook secret key: %w", err)
	}
	return NewSealer(entry.Value())
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
