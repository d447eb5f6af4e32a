// Package keys keeps the deployment's secret keys and seals values under
// them.
//
// Every key lives in one entry of the deployment's keys bucket (a JetStream
// KV bucket, file storage, replicated like the streams), never in a
// database: a copy of a database alone reveals nothing sealed in it. The
// message-hash key (libs/hashid), the webhook signing secrets' key, the
// store secrets' key and the console's token key are entries of that bucket.
package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/broker"
)

// Load returns the key stored under name in bucket, size random bytes long.
// The first caller ever creates it; every later or concurrent caller reads
// that one: the key is written with a create that fails if it exists (one
// writer wins, in a cluster too), and everyone then reads what is stored. A
// read served by a replica that has not seen the winner's create yet finds
// nothing: it is read again until the key shows up or ctx ends.
func Load(ctx context.Context, js jetstream.JetStream, bucket, name string, size, replicas int) ([]byte, error) {
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
	fresh := make([]byte, size)
	_, _ = rand.Read(fresh) // crypto/rand.Read never fails (Go 1.24+)
	var key []byte
	err = broker.Ensure(ctx, name+" key", func(ctx context.Context) error {
		entry, err := kv.Get(ctx, name)
		if err == nil {
			key = entry.Value()
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		// Create fails with ErrKeyExists when another process won (or when
		// an earlier attempt of ours did and its answer was lost): the next
		// attempt reads the winner's key.
		_, err = kv.Create(ctx, name, fresh)
		if err == nil {
			key = fresh
			return nil
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			return errKeyNotVisible
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(key) != size {
		return nil, fmt.Errorf("key %s: %d bytes stored, %d expected", name, len(key), size)
	}
	return key, nil
}

// errKeyNotVisible makes Ensure read the key again after a lost create.
var errKeyNotVisible = fmt.Errorf("key not readable yet: %w", apperr.ErrUnavailable)

// Sealer encrypts values for storage with AES-256-GCM (a random nonce per
// value).
type Sealer struct{ aead cipher.AEAD }

// SealerKeySize is the size of a sealer's key.
const SealerKeySize = 32

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

// LoadSealer returns the sealer under the key stored as name in bucket
// (created on first use, as Load does).
func LoadSealer(ctx context.Context, js jetstream.JetStream, bucket, name string, replicas int) (*Sealer, error) {
	key, err := Load(ctx, js, bucket, name, SealerKeySize, replicas)
	if err != nil {
		return nil, err
	}
	return NewSealer(key)
}

// Seal encrypts plain, bound to ad (may be nil): what is sealed with one ad
// opens only with the same ad. The result is base64, for a text column.
func (s *Sealer) Seal(plain string, ad []byte) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(plain), ad))
}

// ErrSealed is returned by Open for a value that is malformed, was sealed
// under another key or with another ad.
var ErrSealed = errors.New("sealed value does not open under this deployment's key")

// Open decrypts what Seal returned for the same ad.
func (s *Sealer) Open(sealed string, ad []byte) (string, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	n := s.aead.NonceSize()
	if err != nil || len(b) < n {
		return "", ErrSealed
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], ad)
	if err != nil {
		return "", ErrSealed
	}
	return string(plain), nil
}
