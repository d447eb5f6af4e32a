package loadgen

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apitosms/apitosms/internal/phonesim"
)

// phoneWorker is one goroutine driving simulated phones for one or more
// tokens (round robin). Its fields belong to it until the run has ended.
type phoneWorker struct {
	phones    []*phonesim.Phone
	dues      []*tokenDue // of each phone's token
	get       Histogram
	status    Histogram
	toPhone   Histogram // enqueue stamp -> get_messages response
	errs      errorCounts
	verify    bool
	hashes    []string // pulled hashes, with verify
	fatal     error
	untracked int64 // pulled messages without a bench stamp
}

// tokenDue is what one token has to hand out in a drain: the messages its
// merchant queued that are due (not scheduled for later), and how many its
// phones pulled so far. Several phones may share it.
type tokenDue struct {
	due    atomic.Int64
	pulled atomic.Int64
}

// drained reports whether the token's phones pulled all its due messages.
func (d *tokenDue) drained() bool { return d.pulled.Load() >= d.due.Load() }

type phoneSettings struct {
	limit   int
	success float64
	delay   time.Duration
	idle    time.Duration
	verify  bool
	// every paces the phones (Config.PollEvery): a worker starts a round
	// of polls at most once per every; 0 polls again at once.
	every time.Duration
}

func newPhoneWorker(id int, c *http.Client, baseURL string, tokens []string, dues map[string]*tokenDue, s phoneSettings) *phoneWorker {
	w := &phoneWorker{errs: errorCounts{}, verify: s.verify}
	hooks := phonesim.Hooks{
		OnRequest: func(endpoint string, code int, d time.Duration, err error) {
			if code != http.StatusOK {
				w.errs.add(endpoint, code)
				return
			}
			if endpoint == phonesim.EndpointGet {
				w.get.Record(d)
			} else {
				w.status.Record(d)
			}
		},
		OnMessages: func(msgs []phonesim.Message, at time.Time) {
			for _, m := range msgs {
				if t, ok := stampOf(m.Text); ok {
					w.toPhone.Record(at.Sub(t))
				} else {
					w.untracked++
				}
				if w.verify {
					w.hashes = append(w.hashes, m.Hash)
				}
			}
		},
	}
	for i, tok := range tokens {
		w.dues = append(w.dues, dues[tok])
		w.phones = append(w.phones, phonesim.New(phonesim.Config{
			URL: baseURL, Token: tok, Limit: s.limit, Success: s.success, Delay: s.delay,
			Device: "bench" + strconv.Itoa(id), Client: c, Seed: uint64(id*1000 + i + 1), Hooks: hooks,
		}))
	}
	return w
}

// run polls until stop closes or ctx ends. With every set (paced, like
// a SIM-bound phone) a round of polls starts at most once per every, the
// first after offset (workers spread their first rounds over one interval,
// as phones switched on at different times); a round that takes longer
// than every is followed by the next at once. With untilEmpty a token is
// dropped at its first empty poll once its phones pulled all its due
// messages (the queue was filled beforehand; messages scheduled for later
// are never due, so an empty poll alone would not tell a drained token from
// one the server has not handed everything yet), and the worker ends when
// all are dropped; an idle round waits idle. A poll in progress when stop
// closes is finished, report included.
func (w *phoneWorker) run(ctx context.Context, stop <-chan struct{}, untilEmpty bool, idle, every, offset time.Duration) {
	type slot struct {
		ph  *phonesim.Phone
		due *tokenDue
	}
	active := make([]slot, len(w.phones))
	for i, ph := range w.phones {
		active[i] = slot{ph, w.dues[i]}
	}
	if every > 0 && offset > 0 && !pause(ctx, stop, offset) {
		return
	}
	for len(active) > 0 && ctx.Err() == nil {
		select {
		case <-stop:
			return
		default:
		}
		round := time.Now()
		pulled := 0
		var wait time.Duration
		for i := 0; i < len(active); {
			ph, due := active[i].ph, active[i].due
			n, err := ph.Poll(ctx)
			if err != nil {
				if errors.Is(err, phonesim.ErrUnauthorized) {
					w.fatal = err
				}
				return
			}
			pulled += n
			due.pulled.Add(int64(n))
			wait = max(wait, ph.Stats.RetryAfter)
			if n == 0 && ph.Stats.RetryAfter == 0 && untilEmpty && due.drained() {
				active = append(active[:i], active[i+1:]...)
				continue
			}
			i++
		}
		if pulled == 0 && wait == 0 {
			wait = idle
		}
		if every > 0 {
			wait = max(wait, time.Until(round.Add(every)))
		}
		if wait > 0 && !pause(ctx, stop, wait) {
			return
		}
	}
}

// pause waits d; false if stop closed or ctx ended first.
func pause(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-ctx.Done():
		return false
	}
}

// stats sums the counters of the worker's phones.
func (w *phoneWorker) stats() phonesim.Stats {
	var s phonesim.Stats
	for _, ph := range w.phones {
		s.Add(ph.Stats)
	}
	return s
}
