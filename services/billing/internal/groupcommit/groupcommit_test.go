package groupcommit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
)

// TestCallersGetTheirOwnResults: concurrent callers are batched, and each
// gets the grant computed for its own reservation.
func TestCallersGetTheirOwnResults(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	echo := func(_ context.Context, rs []domain.Reservation) ([]domain.Grant, error) {
		time.Sleep(2 * time.Millisecond) // a commit takes time; callers pile up
		gs := make([]domain.Grant, len(rs))
		for i, r := range rs {
			gs[i] = domain.Grant{Granted: r.Count, Used: r.AccountID}
		}
		return gs, nil
	}
	c := New(echo, 8, time.Second, func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()

	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			g, err := c.Reserve(context.Background(), domain.Reservation{AccountID: int64(i), Count: i * 2})
			if err != nil || g.Granted != i*2 || g.Used != int64(i) {
				t.Errorf("caller %d got %+v, %v", i, g, err)
			}
		})
	}
	wg.Wait()
	cancel()
	<-done

	total, biggest := 0, 0
	for _, n := range sizes {
		total += n
		biggest = max(biggest, n)
	}
	if total != 200 || biggest > 8 || biggest < 2 {
		t.Fatalf("batches %v: total %d (want 200), biggest %d (want 2..8)", sizes, total, biggest)
	}
	if _, err := c.Reserve(context.Background(), domain.Reservation{AccountID: 1, Count: 1}); !errors.Is(err, apperr.ErrUnavailable) {
		t.Fatalf("reserve after stop: %v, want unavailable", err)
	}
}

// TestFailedBatchFailsEveryCaller: a database error reaches every caller of
// the batch.
func TestFailedBatchFailsEveryCaller(t *testing.T) {
	boom := errors.New("boom")
	c := New(func(context.Context, []domain.Reservation) ([]domain.Grant, error) { return nil, boom }, 4, time.Second, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := c.Reserve(context.Background(), domain.Reservation{AccountID: 1, Count: 1}); !errors.Is(err, boom) {
				t.Errorf("err = %v, want boom", err)
			}
		})
	}
	wg.Wait()
}
