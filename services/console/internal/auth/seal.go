package auth

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/keys"
)

// sealKeyName is the console's entry in the deployment's keys bucket.
const sealKeyName = "console-tokens"

// Sealer encrypts API tokens the console keeps so a merchant can reveal
// them (libs/keys: AES-256-GCM under a key in the keys bucket, not the
// database, so a copy of the database alone reveals no token). A sealed
// token is bound to its account: one account's value does not open as
// another's.
type Sealer struct{ s *keys.Sealer }

// LoadSealer returns the deployment's sealer, creating its key on first use
// (one create wins; every replica then reads the same key).
func LoadSealer(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Sealer, error) {
	s, err := keys.LoadSealer(ctx, js, bucket, sealKeyName, replicas)
	if err != nil {
		return nil, err
	}
	return &Sealer{s: s}, nil
}

// Seal encrypts plain for account.
func (s *Sealer) Seal(account int64, plain string) string { return s.s.Seal(plain, ad(account)) }

// Open decrypts what Seal returned for account.
func (s *Sealer) Open(account int64, sealed string) (string, error) {
	return s.s.Open(sealed, ad(account))
}

func ad(account int64) []byte { return fmt.Appendf(nil, "console-token/%d", account) }
