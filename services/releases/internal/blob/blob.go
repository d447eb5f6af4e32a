// Package blob keeps APK files in a JetStream object store bucket, so every
// releases replica (embedded or clustered NATS) serves the same bytes. Files
// are streamed in and out chunk by chunk (128 KiB); none is held whole in
// memory.
package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
)

// ErrTooLarge is returned by Put when the input exceeds its size limit.
var ErrTooLarge = errors.New("blob: file too large")

// ErrNotFound is returned by Open for a missing object.
var ErrNotFound = errors.New("blob: object not found")

// ReadError wraps an error of the reader given to Put (the client's upload
// failed), as opposed to an error of the object store.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return "blob: reading upload: " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// Stored describes an object written by Put.
type Stored struct {
	Name   string
	Size   int64
	SHA256 string // lower-case hex
}

// Store is one object store bucket.
type Store struct{ obs jetstream.ObjectStore }

// Open creates the bucket (file storage) if needed, or opens it.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Store, error) {
	if replicas < 1 {
		replicas = 1
	}
	// Every process creates it at start, possibly at the same moment:
	// broker.EnsureObjectStore retries bounded attempts until one wins.
	obs, err := broker.EnsureObjectStore(ctx, js, jetstream.ObjectStoreConfig{
		Bucket:      bucket,
		Description: "apitosms APK files",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", bucket, err)
	}
	return &Store{obs: obs}, nil
}

// Put streams r into a new object with a fresh random name and returns its
// name, size and SHA-256. More than max bytes stop it with ErrTooLarge; an
// error reading r comes back as *ReadError. On any error nothing is kept
// (the object store purges the chunks already sent).
func (s *Store) Put(ctx context.Context, r io.Reader, max int64) (Stored, error) {
	name, err := newName()
	if err != nil {
		return Stored{}, err
	}
	info, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: name}, fullReader{&limitReader{r: r, left: max}})
	if err != nil {
		return Stored{}, err
	}
	sum, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil {
		_ = s.Delete(context.WithoutCancel(ctx), name)
		return Stored{}, fmt.Errorf("object digest: %w", err)
	}
	return Stored{Name: name, Size: int64(info.Size), SHA256: hex.EncodeToString(sum)}, nil
}

// Open returns a reader of length bytes of the object starting at offset.
// Object store reads are sequential, so the first Read discards the offset
// bytes before the range (bounded memory, at the cost of reading them from
// the server); this keeps resumed downloads correct without random access.
// The reader must be closed. It outlives ctx's cancellation (a response
// body is read after its handler returned) but not maxDuration: the object
// store bounds every read by a deadline (5 s when none is given), so the
// whole transfer must end within maxDuration.
func (s *Store) Open(ctx context.Context, name string, offset, length int64, maxDuration time.Duration) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxDuration)
	res, err := s.obs.Get(ctx, name)
	if err != nil {
		cancel()
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("open object: %w", err)
	}
	return &rangeReader{res: res, skip: offset, left: length, cancel: cancel}, nil
}

// Delete removes the object; a missing object is not an error.
func (s *Store) Delete(ctx context.Context, name string) error {
	err := s.obs.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete object: %w", err)
	}
	return nil
}

func newName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "apk/" + hex.EncodeToString(b[:]), nil
}

// limitReader passes r through, failing with ErrTooLarge past left bytes
// and tagging r's own errors as *ReadError.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, ErrTooLarge
	}
	if err != nil && err != io.EOF {
		return n, &ReadError{Err: err}
	}
	return n, err
}

// fullReader fills each buffer it is given unless the input ends: the object
// store makes one chunk (one message) per Read, and a multipart part yields
// at most 4 KiB per Read, which would mean tens of thousands of tiny chunks
// and stall the publisher.
type fullReader struct{ r io.Reader }

func (f fullReader) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if err == io.ErrUnexpectedEOF || (err == io.EOF && n > 0) {
		err = nil // the next Read reports io.EOF
	}
	return n, err
}

// rangeReader reads left bytes of res after skipping skip bytes.
type rangeReader struct {
	res    jetstream.ObjectResult
	skip   int64
	left   int64
	cancel context.CancelFunc
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.skip > 0 {
		n, err := io.CopyN(io.Discard, r.res, r.skip)
		r.skip -= n
		if err != nil {
			return 0, unexpected(err)
		}
	}
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.res.Read(p)
	r.left -= int64(n)
	if errors.Is(err, io.EOF) && r.left > 0 {
		return n, io.ErrUnexpectedEOF
	}
	if err == nil && r.left == 0 {
		err = io.EOF
	}
	return n, err
}

func (r *rangeReader) Close() error {
	err := r.res.Close()
	r.cancel()
	return err
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
