package auth

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

// sealKeyName is the console's entry in the deployment's keys bucket.
const sealKeyName = "console-tokens"

// Sealer encrypts API tokens the console keeps so a merchant can reveal
// them (AES-256-GCM). The key lives in the keys bucket, not the database:
// a copy of the database alone reveals no token.
type Sealer struct{ aead cipher.AEAD }

// LoadSealer returns the deployment's sealer, creating its key on first use
// (one create wins; every replica then reads the same key).
func LoadSealer(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Sealer, error) {
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
	err = broker.Ensure(ctx, "console token key", func(ctx context.Context) error {
		if e, err := kv.Get(ctx, sealKeyName); err == nil {
			key = e.Value()
			return nil
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		_, err := kv.Create(ctx, sealKeyName, fresh)
		if err == nil {
			key = fresh
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		// Another replica won: read its key (until visible here).
		e, err := kv.Get(ctx, sealKeyName)
		if err != nil {
			return apperr.ErrUnavailable
		}
		key = e.Value()
		return nil
	})
	if err != nil {
		return nil, err
	}
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

// Seal encrypts s under a random nonce, bound to account (the sealed value
// of one account does not open as another's).
func (s *Sealer) Seal(account int64, plain string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(plain), ad(account)))
}

// Open decrypts what Seal returned for account.
func (s *Sealer) Open(account int64, sealed string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	n := s.aead.NonceSize()
	if err != nil || len(b) < n {
		return "", errors.New("sealed token malformed")
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], ad(account))
	if err != nil {
		return "", errors.New("sealed token does not open under this deployment's key")
	}
	return string(plain), nil
}

func ad(account int64) []byte { return fmt.Appendf(nil, "console-token/%d", account) }
