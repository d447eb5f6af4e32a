package phonesim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// RunOptions drive a group of phones sharing one token.
type RunOptions struct {
	Concurrency int           // phones polling in parallel (default 1)
	Count       int64         // stop once this many messages were pulled and reported (0: no limit)
	Idle        time.Duration // wait after an empty poll (default 1 s)
	// StopWhenEmpty ends each phone at its first empty poll: the queue is drained.
	StopWhenEmpty bool
	// Log, if set, gets a line when a phone's requests start failing and
	// when they recover (not one per failed request).
	Log io.Writer
}

// Run runs opts.Concurrency phones built from cfg (device names get a
// "-<n>" suffix when there are several) until ctx ends, Count is reached or
// (with StopWhenEmpty) the queue is empty. It returns the summed stats; the
// error is ErrUnauthorized if the server refused the token, else nil.
func Run(ctx context.Context, cfg Config, opts RunOptions) (Stats, error) {
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.Idle <= 0 {
		opts.Idle = time.Second
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(opts.Concurrency)
	}
	var (
		pulled atomic.Int64
		mu     sync.Mutex
		total  Stats
		first  error
		wg     sync.WaitGroup
	)
	for i := 0; i < opts.Concurrency; i++ {
		c := cfg
		if opts.Concurrency > 1 {
			c.Device = cfg.Device + "-" + strconv.Itoa(i+1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ph := New(c)
			err := loop(ctx, ph, opts, &pulled)
			mu.Lock()
			defer mu.Unlock()
			total.Add(ph.Stats)
			if err != nil && first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	return total, first
}

func loop(ctx context.Context, ph *Phone, opts RunOptions, pulled *atomic.Int64) error {
	failing := false
	for ctx.Err() == nil {
		if opts.Count > 0 && pulled.Load() >= opts.Count {
			return nil
		}
		errsBefore := ph.Stats.RequestErrors
		n, err := ph.Poll(ctx)
		pulled.Add(int64(n))
		if opts.Log != nil && ctx.Err() == nil {
			switch failed := ph.Stats.RequestErrors > errsBefore; {
			case failed && !failing:
				fmt.Fprintf(opts.Log, "phone %s: requests failing (status %d, %v)\n", ph.cfg.Device, ph.Stats.LastCode, withoutURL(ph.Stats.LastError))
				failing = true
			case !failed && failing:
				fmt.Fprintf(opts.Log, "phone %s: recovered\n", ph.cfg.Device)
				failing = false
			}
		}
		if errors.Is(err, ErrUnauthorized) {
			return err
		}
		if err != nil {
			return nil // ctx ended
		}
		wait := ph.Stats.RetryAfter
		if n == 0 && wait == 0 {
			if opts.StopWhenEmpty {
				return nil
			}
			wait = opts.Idle
		}
		sleep(ctx, wait)
	}
	return nil
}

// Add adds o's counters to s.
func (s *Stats) Add(o Stats) {
	s.Polls += o.Polls
	s.EmptyPolls += o.EmptyPolls
	s.Pulled += o.Pulled
	s.Sent += o.Sent
	s.Failed += o.Failed
	s.Reported += o.Reported
	s.Updated += o.Updated
	s.ReportErrors += o.ReportErrors
	s.RequestErrors += o.RequestErrors
	if o.LastError != nil {
		s.LastError = o.LastError
	}
	if o.LastCode != 0 {
		s.LastCode = o.LastCode
	}
}

// withoutURL strips the request URL, which holds the token, from err.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
