package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
)

// Session kinds.
const (
	Merchant = "m"
	Operator = "o"
)

// Session is one signed-in browser. It lives in the sessions bucket under
// a key derived from the cookie (the bucket never holds the cookie value
// itself): "m.<account>.<sha256 hex>" or "o.<sha256 hex>", so every session
// of an account can be listed and revoked ("sign out everywhere").
type Session struct {
	Kind      string    `json:"kind"`
	AccountID int64     `json:"accountId,omitempty"`
	Email     string    `json:"email,omitempty"`
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"createdAt"`
}

// Sessions keeps sessions in a KV bucket whose entries expire after the
// session lifetime (absolute, from sign-in).
type Sessions struct{ kv jetstream.KeyValue }

// ErrNoSession: the cookie names no live session.
var ErrNoSession = errors.New("no session")

// OpenSessions opens (creating if needed) the sessions bucket.
func OpenSessions(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration, replicas int) (*Sessions, error) {
	kv, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "apitosms console sessions",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("console sessions bucket: %w", err)
	}
	return &Sessions{kv: kv}, nil
}

// Random returns n random bytes, base64url.
func Random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create stores a new session and returns its cookie value, always fresh
// (a new id at every sign-in: a session id planted before sign-in is never
// promoted).
func (s *Sessions) Create(ctx context.Context, sess Session) (string, error) {
	secret := Random(32)
	cookie := sess.Kind + "." + secret
	if sess.Kind == Merchant {
		cookie = sess.Kind + strconv.FormatInt(sess.AccountID, 10) + "." + secret
	}
	key, ok := keyOf(cookie)
	if !ok {
		return "", errors.New("session kind")
	}
	sess.CSRF = Random(32)
	body, err := json.Marshal(sess)
	if err != nil {
		return "", err
	}
	if _, err := s.kv.Create(ctx, key, body); err != nil {
		return "", fmt.Errorf("store session: %w", err)
	}
	return cookie, nil
}

// Get returns the live session of cookie, or ErrNoSession.
func (s *Sessions) Get(ctx context.Context, cookie string) (Session, error) {
	key, ok := keyOf(cookie)
	if !ok {
		return Session{}, ErrNoSession
	}
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, err
	}
	var sess Session
	if err := json.Unmarshal(e.Value(), &sess); err != nil {
		return Session{}, ErrNoSession
	}
	return sess, nil
}

// Delete ends the session of cookie (no error if there is none).
func (s *Sessions) Delete(ctx context.Context, cookie string) error {
	key, ok := keyOf(cookie)
	if !ok {
		return nil
	}
	if err := s.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	return nil
}

// DeleteAccount ends every session of a merchant account, on every replica.
func (s *Sessions) DeleteAccount(ctx context.Context, account int64) error {
	lister, err := s.kv.ListKeysFiltered(ctx, Merchant+"."+strconv.FormatInt(account, 10)+".*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := s.kv.Purge(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
	}
	return nil
}

// keyOf maps a cookie value to its bucket key; false for a malformed one.
func keyOf(cookie string) (string, bool) {
	head, secret, ok := strings.Cut(cookie, ".")
	if !ok || len(secret) != 43 || head == "" {
		return "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		return "", false
	}
	sum := sha256.Sum256([]byte(secret))
	digest := hex.EncodeToString(sum[:])
	switch {
	case head == Operator:
		return Operator + "." + digest, true
	case head[0] == Merchant[0]:
		id, err := strconv.ParseInt(head[1:], 10, 64)
		if err != nil || id < 1 || strconv.FormatInt(id, 10) != head[1:] {
			return "", false
		}
		return Merchant + "." + head[1:] + "." + digest, true
	}
	return "", false
}
