package groupcommit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/groupcommit"
)

// The tests run in synctest bubbles: time is virtual, and "every other
// goroutine is blocked" (synctest.Wait) replaces sleeping for a handover.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type job struct {
	in  int
	out int
}

func TestBatchesConcurrentJobsAndReturnsEach(t *testing.T) { synctest.Test(t, testBatches) }

func testBatches(t *testing.T) {
	var batches, maxSize atomic.Int64
	b := groupcommit.New(8, func(ctx context.Context, batch []*job) {
		time.Sleep(2 * time.Millisecond) // a commit takes (virtual) time: others queue behind it
		for _, j := range batch {
			j.out = j.in * 2
		}
	}, func(size int) {
		batches.Add(1)
		if int64(size) > maxSize.Load() {
			maxSize.Store(int64(size))
		}
		if size > 8 {
			t.Errorf("batch of %d exceeds the maximum", size)
		}
	})
	defer b.Close()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := &job{in: i}
			if err := b.Do(context.Background(), j); err != nil || j.out != 2*i {
				t.Errorf("job %d: out %d err %v", i, j.out, err)
			}
		}()
	}
	wg.Wait()
	if batches.Load() >= 200 || maxSize.Load() < 2 {
		t.Fatalf("%d batches, largest %d: nothing was grouped", batches.Load(), maxSize.Load())
	}
}

func TestDoAfterCloseIsUnavailable(t *testing.T) {
	b := groupcommit.New(4, func(context.Context, []*job) {}, nil)
	b.Close()
	if err := b.Do(context.Background(), &job{}); !errors.Is(err, apperr.ErrUnavailable) {
		t.Fatalf("Do after Close: %v", err)
	}
}

func TestCancelledBeforeHandOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		b := groupcommit.New(1, func(context.Context, []*job) { <-block }, nil)
		defer b.Close()
		occupied := make(chan struct{})
		go func() { _ = b.Do(context.Background(), &job{}); close(occupied) }() // occupies the committer
		// Every other goroutine is blocked: the committer holds the first job.
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := b.Do(ctx, &job{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("want the caller's deadline, got %v", err)
		}
		close(block)
		<-occupied
	})
}

func TestCommitContextOutlivesCaller(t *testing.T) { synctest.Test(t, testCommitOutlives) }

func testCommitOutlives(t *testing.T) {
	b := groupcommit.New(4, func(ctx context.Context, batch []*job) {
		time.Sleep(20 * time.Millisecond) // virtual time (synctest), the thing under test: a commit outlasting its caller's deadline
		for _, j := range batch {
			if ctx.Err() == nil {
				j.out = 1
			}
		}
	}, nil)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	j := &job{}
	if err := b.Do(ctx, j); err != nil || j.out != 1 {
		t.Fatalf("a handed-over job must finish: out %d err %v", j.out, err)
	}
}

// NewParallel commits up to workers batches at once.
func TestParallelCommitsBatchesAtOnce(t *testing.T) { synctest.Test(t, testParallel) }

func testParallel(t *testing.T) {
	const workers = 3
	var mu sync.Mutex
	inFlight, peak := 0, 0
	release := make(chan struct{})
	b := groupcommit.NewParallel(workers, 1, func(_ context.Context, batch []*job) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		for _, j := range batch {
			j.out = j.in
		}
	}, nil)
	var wg sync.WaitGroup
	jobs := make([]*job, 2*workers)
	for i := range jobs {
		jobs[i] = &job{in: i}
		wg.Go(func() {
			if err := b.Do(context.Background(), jobs[i]); err != nil {
				t.Error(err)
			}
		})
	}
	synctest.Wait() // every worker holds a batch, the other jobs wait
	close(release)
	wg.Wait()
	b.Close()
	if peak != workers {
		t.Fatalf("at most %d batches committed at once, want %d", peak, workers)
	}
	for i, j := range jobs {
		if j.out != i {
			t.Fatalf("job %d got %d", i, j.out)
		}
	}
}
