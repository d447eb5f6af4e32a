package store_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/queue/internal/store"
)

// The model of the message state machine (docs/architecture.md, "States"):
// what every store operation must do to a message, written as plainly as
// possible. TestStateMachineModel drives random sequences of queue, claim,
// ack, report, cancel, settings changes, time passing, sweeps and restarts
// against the real store and the model, and compares them after each step.

type modelMsg struct {
	pos        int64
	high       bool
	sendAt     int64 // Unix ms; 0 none
	validUntil int64 // Unix ms; 0 none
	row        int   // the stored status: -1 scheduled, 0 new, 1 initiated, 2-5 final
	outcome    int   // 0: none; else the final status recorded
	attempts   int
	claim      int64 // the claim it was last handed out under
	refund     bool  // quota to be given back
}

type modelClaim struct {
	positions   []int64
	expires     int64 // Unix ms
	lease       int   // 0 none, 1 requeue, 2 expire
	maxAttempts int
}

type model struct {
	msgs     map[int64]*modelMsg
	order    []int64
	claims   map[int64]*modelClaim
	settings store.Settings
}

func (m *model) tracked(x *modelMsg) int {
	if x.outcome != 0 {
		return x.outcome
	}
	return max(x.row, 0)
}

// claim returns what a claim of limit at now must hand out.
func (m *model) claim(now int64, limit int) []*modelMsg {
	var due []*modelMsg
	for _, p := range m.order {
		x := m.msgs[p]
		if x.row == 0 && (x.validUntil == 0 || x.validUntil > now) {
			due = append(due, x)
		}
	}
	slices.SortFunc(due, func(a, b *modelMsg) int {
		if a.high != b.high {
			if a.high {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.pos, b.pos)
	})
	return due[:min(limit, len(due))]
}

// sweep is what one sweeper round does at now: settle ended claims, then
// promote due scheduled messages, then expire waiting ones past their lifetime.
func (m *model) sweep(now int64) {
	for id, c := range m.claims {
		if c.expires > now {
			continue
		}
		below := 1 << 30
		switch c.lease {
		case 1:
			below = c.maxAttempts
		case 2:
			below = 0
		}
		for _, p := range c.positions {
			x := m.msgs[p]
			if x.row != 1 || x.claim != id {
				continue
			}
			if x.attempts < below {
				x.row, x.claim = 0, 0
			} else {
				x.row, x.outcome, x.refund = 4, 4, true
			}
		}
		delete(m.claims, id)
	}
	for _, p := range m.order {
		if x := m.msgs[p]; x.row == -1 && x.sendAt <= now {
			x.row = 0
		}
	}
	for _, p := range m.order {
		if x := m.msgs[p]; x.row <= 0 && x.validUntil != 0 && x.validUntil <= now {
			x.row, x.outcome, x.refund = 4, 4, true
		}
	}
}

func (m *model) report(x *modelMsg, status int) {
	if x.outcome != 0 || x.row > 1 {
		return
	}
	x.outcome = status
	if x.row <= 0 {
		x.row = status
		return
	}
	if c, open := m.claims[x.claim]; open && c != nil {
		x.row = status
	}
}

func TestStateMachineModel(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			testkit.Each(t, func(t *testing.T, b testkit.Backend) { runModel(t, b, seed) })
		})
	}
}

func runModel(t *testing.T, b testkit.Backend, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 11))
	st := open(t, b)
	// Claims, acks and reports go through a claim group half the time (its
	// prepared statements, on SQLite its shared transactions), as the
	// service's do.
	g := st.NewClaimGroup(nil)
	defer g.Close()
	m := &model{msgs: map[int64]*modelMsg{}, claims: map[int64]*modelClaim{}, settings: store.DefaultSettings}
	now := time.Now()
	ms := func() int64 { return now.UnixMilli() }
	next := int64(1)
	steps := 250
	if testing.Short() {
		t.Helper()
		steps = 60
	}
	for step := range steps {
		var op string
		switch r := rng.IntN(100); {
		case r < 20:
			op = "queue"
			var batch []store.NewMessage
			for range 1 + rng.IntN(4) {
				x := &modelMsg{pos: next, high: rng.IntN(5) == 0}
				if rng.IntN(5) == 0 {
					x.sendAt = ms() + int64(1+rng.IntN(300))*1000
					x.row = -1
				}
				if rng.IntN(5) == 0 {
					x.validUntil = max(ms(), x.sendAt) + int64(60+rng.IntN(600))*1000
				}
				m.msgs[next] = x
				m.order = append(m.order, next)
				batch = append(batch, store.NewMessage{Pos: next, AccountID: 1, Phone: "+15550000000", Text: "m",
					AcceptedAt: now, SendAt: x.sendAt, ValidUntil: x.validUntil, High: x.high})
				next++
			}
			insert(t, st, batch...)
		case r < 45:
			op = "claim"
			limit := 1 + rng.IntN(5)
			want := m.claim(ms(), limit)
			id := store.NewClaimID()
			claim := st.Claim
			if step%2 == 0 {
				claim = g.Claim
			}
			got, err := claim(ctx, 1, limit, store.NoBound, now, store.Confirm{ID: id, Expires: now.Add(30 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			wantPos := make([]int64, len(want))
			for i, x := range want {
				wantPos[i] = x.pos
				x.row, x.attempts, x.claim = 1, x.attempts+1, id
			}
			if !slices.Equal(positions(got), wantPos) {
				t.Fatalf("step %d: claim(%d) handed out %v, model says %v", step, limit, positions(got), wantPos)
			}
			if len(want) > 0 {
				c := &modelClaim{positions: wantPos, expires: ms() + 30000}
				if m.settings.LeaseSeconds > 0 {
					c.expires = ms() + int64(m.settings.LeaseSeconds)*1000
					c.lease, c.maxAttempts = 1, m.settings.MaxAttempts
					if m.settings.OnExpiry == "expire" {
						c.lease = 2
					}
				}
				m.claims[id] = c
				if rng.IntN(6) > 0 { // else the ingress died before its ack
					ack := st.Ack
					if rng.IntN(2) == 0 {
						ack = g.Ack
					}
					if _, err := ack(ctx, []int64{id}); err != nil {
						t.Fatal(err)
					}
					if c.lease == 0 {
						delete(m.claims, id)
					}
				}
			}
		case r < 62:
			op = "report"
			if len(m.order) == 0 {
				continue
			}
			x := m.msgs[m.order[rng.IntN(len(m.order))]]
			status := store.StatusSent + rng.IntN(2)
			reports := []store.Report{{AccountID: 1, Pos: x.pos, Status: status, At: now}}
			var err error
			if step%2 == 0 {
				_, _, err = st.ApplyReports(ctx, reports)
			} else {
				_, err = g.RecordReports(ctx, reports, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			m.report(x, status)
		case r < 68:
			op = "cancel"
			if len(m.order) == 0 {
				continue
			}
			x := m.msgs[m.order[rng.IntN(len(m.order))]]
			_, err := st.Cancel(ctx, 1, x.pos, now)
			if x.row <= 0 {
				if err != nil {
					t.Fatalf("step %d: cancel of waiting %d: %v", step, x.pos, err)
				}
				x.row, x.outcome, x.refund = 5, 5, true
			} else if !errors.Is(err, store.ErrNotCancellable) {
				t.Fatalf("step %d: cancel of %d (row %d): %v, want not cancellable", step, x.pos, x.row, err)
			}
		case r < 72:
			op = "settings"
			s := store.Settings{OnExpiry: []string{"requeue", "expire"}[rng.IntN(2)], MaxAttempts: 1 + rng.IntN(3)}
			if rng.IntN(3) > 0 {
				s.LeaseSeconds = 60 + rng.IntN(120)
			}
			if err := st.PutSettings(ctx, 1, s); err != nil {
				t.Fatal(err)
			}
			m.settings = s
		case r < 90:
			op = "time"
			now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
		case r < 97:
			op = "sweep"
			sweepStore(t, st, now)
			m.sweep(ms())
		default:
			op = "restart" // a new process: a new pool, migrations run again
			st = store.New(b.DB(t, store.Service))
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		check(t, st, m, fmt.Sprintf("step %d (%s)", step, op))
	}
	// Nothing lost: with time far ahead, everything ends up final.
	now = now.Add(24 * time.Hour)
	for range 10 {
		sweepStore(t, st, now)
		m.sweep(ms())
		got, err := st.Claim(ctx, 1, 200, store.NoBound, now, store.Confirm{})
		if err != nil {
			t.Fatal(err)
		}
		var wantPos []int64
		for _, x := range m.claim(ms(), 200) {
			x.row, x.attempts, x.claim = 1, x.attempts+1, 0
			wantPos = append(wantPos, x.pos)
		}
		if !slices.Equal(positions(got), wantPos) {
			t.Fatalf("final claim handed out %v, model says %v", positions(got), wantPos)
		}
		var reports []store.Report // the phones report all they hold, late or not
		for _, p := range m.order {
			if x := m.msgs[p]; m.tracked(x) == store.StatusInitiated {
				reports = append(reports, store.Report{AccountID: 1, Pos: p, Status: store.StatusSent, At: now})
			}
		}
		if _, _, err := st.ApplyReports(ctx, reports); err != nil {
			t.Fatal(err)
		}
		for _, r := range reports {
			m.report(m.msgs[r.Pos], r.Status)
		}
	}
	check(t, st, m, "end")
	for _, p := range m.order {
		if x := m.msgs[p]; m.tracked(x) < store.StatusSent {
			t.Fatalf("message %d never ended: %+v", p, x)
		}
	}
}

func sweepStore(t *testing.T, st *store.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.Sweep(ctx, now, 10000); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Promote(ctx, now, 10000); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ExpireDue(ctx, now, 10000); err != nil {
		t.Fatal(err)
	}
}

// check compares every message's tracked status and attempts, and the
// quota to give back (exactly the expired and cancelled messages, once).
func check(t *testing.T, st *store.Store, m *model, at string) {
	t.Helper()
	got, err := st.Lookup(context.Background(), 1, m.order)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(m.order) {
		t.Fatalf("%s: %d messages stored, model has %d", at, len(got), len(m.order))
	}
	for _, g := range got {
		x := m.msgs[g.Pos]
		if g.Status != m.tracked(x) || g.Attempts != x.attempts {
			t.Fatalf("%s: message %d is %d after %d attempts, model says %d after %d (%+v)", at, g.Pos, g.Status, g.Attempts, m.tracked(x), x.attempts, *x)
		}
	}
	pending, err := st.PendingRefunds(context.Background(), 100000)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, p := range m.order {
		if m.msgs[p].refund {
			want = append(want, p)
		}
	}
	if !slices.Equal(pending, want) {
		t.Fatalf("%s: refunds pending %v, model says %v", at, pending, want)
	}
	// The kept backlog counts equal a full count and the model's.
	bl := checkCounts(t, st, at)
	var waiting, initiated int64
	for _, p := range m.order {
		switch x := m.msgs[p]; {
		case x.row == 0:
			waiting++
		case x.row == 1 && x.outcome == 0:
			initiated++
		}
	}
	if bl.Waiting != waiting || bl.Initiated != initiated {
		t.Fatalf("%s: backlog counts %d waiting, %d initiated; model says %d and %d", at, bl.Waiting, bl.Initiated, waiting, initiated)
	}
}
