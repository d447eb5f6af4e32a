// Package hashid maps a message's FIFO position (events.Position) to its
// public hash and back. The hash is the position encrypted with Triple DES
// (crypto/des, a 64-bit block cipher) under the deployment's secret key,
// written as 16 lower-case hex characters: it looks random to anyone without
// the key, and two messages can never share one, because encryption is a
// permutation of the 64-bit block. A hash therefore needs no index to be
// found: decrypting it gives the position the stores key their rows by.
//
// Why Triple DES, which linters flag as weak: a 64-bit hash needs a 64-bit
// block cipher (AES's 128-bit block would double the hash's length, and
// format-preserving constructions on top of it are not in the standard
// library). DES's weakness is its 56-bit key and, for Triple DES, the
// birthday bound on 64-bit blocks: after about 2^32 blocks encrypted under
// one key, an attacker watching ciphertexts of chosen or repeated plaintexts
// learns something (Sweet32). Neither applies here: the key is 168 bits, no
// message is ever encrypted (only 8-byte positions, each once), and what a
// hash hides is only the position, not a secret. See docs/architecture.md.
//
// The key is created once per deployment (namespace) and kept in a
// key-value bucket on the broker (Load), so every replica of every service
// uses the same one.
package hashid

import (
	"context"
	"crypto/cipher"
	"crypto/des" //nolint:gosec // G502: a 64-bit block is what a 64-bit hash needs (package comment)
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/apitosms/apitosms/libs/keys"
	"github.com/nats-io/nats.go/jetstream"
)

// Len is the length of a hash: 16 lower-case hex characters.
const Len = 16

// KeySize is the length of a Triple DES key.
const KeySize = 24

// Codec encodes and decodes hashes; safe for concurrent use.
type Codec struct {
	block cipher.Block
}

// New returns the codec of key (KeySize bytes).
func New(key []byte) (*Codec, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("hash key: %d bytes, want %d", len(key), KeySize)
	}
	block, err := des.NewTripleDESCipher(key) //nolint:gosec // G405: see the package comment
	if err != nil {
		return nil, fmt.Errorf("hash key: %w", err)
	}
	return &Codec{block: block}, nil
}

// Hash returns the public hash of the message at pos.
func (c *Codec) Hash(pos int64) string {
	var plain, sealed [8]byte
	binary.BigEndian.PutUint64(plain[:], uint64(pos))
	c.block.Encrypt(sealed[:], plain[:])
	var out [Len]byte
	hex.Encode(out[:], sealed[:])
	return string(out[:])
}

// Pos returns the position hash was made from. It reports false for a
// string that is not 16 lower-case hex characters (hex.Decode would take
// upper case too, giving one message two hashes); any other string decodes
// to some position, which the stores then find or not.
func (c *Codec) Pos(hash string) (int64, bool) {
	if len(hash) != Len {
		return 0, false
	}
	var sealed, plain [8]byte
	for i := range sealed {
		hi, ok1 := nibble(hash[2*i])
		lo, ok2 := nibble(hash[2*i+1])
		if !ok1 || !ok2 {
			return 0, false
		}
		sealed[i] = hi<<4 | lo
	}
	c.block.Decrypt(plain[:], sealed[:])
	pos := int64(binary.BigEndian.Uint64(plain[:]))
	if pos <= 0 {
		return 0, false // never a position: sequences start at 1
	}
	return pos, true
}

func nibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// keyName is the bucket entry holding the key.
const keyName = "hash-key"

// Load returns the codec of the deployment's key, kept in bucket under
// "hash-key" (libs/keys: the first caller ever creates it at random, every
// later or concurrent caller reads that one).
func Load(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Codec, error) {
	key, err := keys.Load(ctx, js, bucket, keyName, KeySize, replicas)
	if err != nil {
		return nil, err
	}
	return New(key)
}
