package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitosms/apitosms/internal/loadgen"
	"github.com/apitosms/apitosms/internal/phonesim"
)

// event is one request's outcome on the timeline.
type event struct {
	at   time.Time
	code int // 0: transport error
}

// failed: the system's fault, not the client's (5xx or no answer).
func (e event) failed() bool { return e.code == 0 || e.code >= 500 }

// timeline collects every request of the run.
type timeline struct {
	mu     sync.Mutex
	events []event
}

func (t *timeline) add(code int) {
	t.mu.Lock()
	t.events = append(t.events, event{at: time.Now(), code: code})
	t.mu.Unlock()
}

func (t *timeline) snapshot() []event {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]event(nil), t.events...)
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// ackedMsg is one message a merchant got a 200 for.
type ackedMsg struct {
	merchant, seq int
}

// load is the merchants and phones of a run.
type load struct {
	url, admin string
	s          settings
	client     *http.Client
	tokens     []string
	tl         timeline
	requests   atomic.Int64

	mu       sync.Mutex
	acks     map[string]ackedMsg // hash -> message
	pulls    map[string]int      // hash -> times handed out
	pullSeq  [][]int             // per merchant: seq numbers in the order handed out
	texts    map[string]string   // hash -> text, of everything handed out
	unacked  int                 // items of requests given up on
	giveUps  int
	fifoErrs []string
	fifoAt   [][3]int // merchant, seq handed out late, seq handed out before it

	stopM, stopP       chan struct{}
	merchWG, phoneWG   sync.WaitGroup
	merchStop, phStop  sync.Once
	phoneStats         []phonesim.Stats
	phoneStatsMu       sync.Mutex
	unauthorizedPhones atomic.Int64
}

func newLoad(ctx context.Context, e env, s settings) (*load, error) {
	l := &load{url: strings.TrimRight(e["APITOSMS_URL"], "/"), admin: e["APITOSMS_ADMIN_TOKEN"], s: s,
		client: phonesim.NewClient(4 * s.merchants), acks: map[string]ackedMsg{}, pulls: map[string]int{},
		texts: map[string]string{}, pullSeq: make([][]int, s.merchants), stopM: make(chan struct{}), stopP: make(chan struct{})}
	tokens, err := loadgen.CreateAccounts(ctx, l.client, l.url, l.admin, s.merchants)
	if err != nil {
		return nil, fmt.Errorf("create accounts through the proxy: %w", err)
	}
	l.tokens = tokens
	return l, nil
}

func (l *load) start(ctx context.Context) {
	for m := range l.tokens {
		l.merchWG.Add(1)
		go func() { defer l.merchWG.Done(); l.merchant(ctx, m) }()
		l.phoneWG.Add(1)
		go func() { defer l.phoneWG.Done(); l.phone(ctx, m) }()
	}
}

func (l *load) stopMerchants() { l.merchStop.Do(func() { close(l.stopM) }); l.merchWG.Wait() }
func (l *load) stopPhones()    { l.phStop.Do(func() { close(l.stopP) }); l.phoneWG.Wait() }

func (l *load) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// merchant queues batches "m<i>-<seq>" in order, each under its own
// Idempotency-Key and retried until answered 200, so its acknowledged
// messages are known exactly, in order.
func (l *load) merchant(ctx context.Context, m int) {
	url := l.url + "/api/" + l.tokens[m] + "/queue"
	seq := 0
	for r := 0; ; r++ {
		select {
		case <-l.stopM:
			return
		case <-ctx.Done():
			return
		default:
		}
		items := make([]map[string]string, l.s.batch)
		for i := range items {
			items[i] = map[string]string{"phone": fmt.Sprintf("+1555%03d%04d", m, i), "message": fmt.Sprintf("m%d-%d cluster test", m, seq+i)}
		}
		body, _ := json.Marshal(items)
		key := fmt.Sprintf("ct-%d-%d-%d", time.Now().UnixNano(), m, r)
		hashes, ok := l.queueUntilAcked(ctx, url, key, body)
		if !ok {
			l.mu.Lock()
			l.giveUps++
			l.unacked += l.s.batch
			l.mu.Unlock()
			seq += l.s.batch
			continue
		}
		l.mu.Lock()
		for i, h := range hashes {
			l.acks[h] = ackedMsg{merchant: m, seq: seq + i}
		}
		l.mu.Unlock()
		seq += l.s.batch
	}
}

// queueUntilAcked sends one queue request until it is answered 200 (a
// retry with the same key replays the first answer), for at most a minute.
func (l *load) queueUntilAcked(ctx context.Context, url, key string, body []byte) ([]string, bool) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		l.requests.Add(1)
		resp, err := l.client.Do(req)
		if err != nil {
			l.tl.add(0)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		data, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil {
			l.tl.add(0)
			continue
		}
		l.tl.add(resp.StatusCode)
		if resp.StatusCode == http.StatusOK {
			var r struct {
				Items []struct {
					Hash string `json:"hash"`
				} `json:"items"`
			}
			if json.Unmarshal(data, &r) != nil || len(r.Items) != bytes.Count(body, []byte(`"phone"`)) {
				return nil, false
			}
			out := make([]string, len(r.Items))
			for i, it := range r.Items {
				out[i] = it.Hash
			}
			return out, true
		}
		wait := 200 * time.Millisecond
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		time.Sleep(wait)
	}
	return nil, false
}

// phone is one simulated phone on merchant m's token: it pulls (one phone
// per token, so pull order is FIFO order), reports, and records both.
func (l *load) phone(ctx context.Context, m int) {
	ph := phonesim.New(phonesim.Config{URL: l.url, Token: l.tokens[m], Limit: 50, Success: 0.9, Device: fmt.Sprintf("ct-phone-%d", m),
		Client: l.client, Hooks: phonesim.Hooks{
			OnRequest: func(_ string, code int, _ time.Duration, _ error) { l.tl.add(code) },
			OnMessages: func(msgs []phonesim.Message, _ time.Time) {
				l.mu.Lock()
				defer l.mu.Unlock()
				for _, msg := range msgs {
					l.pulls[msg.Hash]++
					l.texts[msg.Hash] = msg.Text
					var mm, seq int
					if _, err := fmt.Sscanf(msg.Text, "m%d-%d", &mm, &seq); err != nil || mm != m {
						l.fifoErrs = append(l.fifoErrs, fmt.Sprintf("merchant %d's phone got a foreign message %q", m, msg.Text))
						continue
					}
					if prev := l.pullSeq[m]; len(prev) > 0 && seq <= prev[len(prev)-1] {
						// Judged in verify: a re-offer after a lost answer is in order.
						l.fifoAt = append(l.fifoAt, [3]int{m, seq, prev[len(prev)-1]})
					}
					l.pullSeq[m] = append(l.pullSeq[m], seq)
				}
			},
		}})
	defer func() {
		l.phoneStatsMu.Lock()
		l.phoneStats = append(l.phoneStats, ph.Stats)
		l.phoneStatsMu.Unlock()
	}()
	for {
		select {
		case <-l.stopP:
			return
		case <-ctx.Done():
			return
		default:
		}
		n, err := ph.Poll(ctx)
		if errors.Is(err, phonesim.ErrUnauthorized) {
			l.unauthorizedPhones.Add(1)
			return
		}
		if n == 0 {
			wait := ph.Stats.RetryAfter
			if wait == 0 {
				wait = 100 * time.Millisecond
			}
			select {
			case <-time.After(wait):
			case <-l.stopP:
				return
			}
		}
	}
}

// drain waits until every acknowledged message was handed out.
func (l *load) drain(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last, lastChange := -1, time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		l.mu.Lock()
		missing := 0
		for h := range l.acks {
			if l.pulls[h] == 0 {
				missing++
			}
		}
		l.mu.Unlock()
		if missing == 0 {
			return nil
		}
		if missing != last {
			last, lastChange = missing, time.Now()
		} else if time.Since(lastChange) > 20*time.Second {
			// Nothing more comes: verify says what is missing, and why.
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return nil
}
