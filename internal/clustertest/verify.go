package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
)

// verify checks the run's guarantees: every acknowledged message handed out
// exactly once, in FIFO order per merchant, nothing left behind.
func verify(ctx context.Context, e env, l *load) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	twice := 0
	for h, n := range l.pulls {
		if n > 1 {
			twice++
			if twice <= 5 {
				errs = append(errs, fmt.Errorf("message %s (%q) handed out %d times", h, l.texts[h], n))
			}
		}
	}
	var missing []string // texts of acknowledged messages never handed out
	for h, a := range l.acks {
		if l.pulls[h] == 0 {
			missing = append(missing, fmt.Sprintf("m%d-%d cluster test", a.merchant, a.seq))
		}
	}
	foreign := 0
	for h := range l.pulls {
		if _, ok := l.acks[h]; !ok {
			foreign++
		}
	}
	// Every batch goes out under its own Idempotency-Key, retried until
	// answered: a text handed out under two hashes was stored twice.
	queuedTwice := 0
	byText := make(map[string]string, len(l.texts))
	for h, text := range l.texts {
		if other, ok := byText[text]; ok {
			queuedTwice++
			if queuedTwice <= 5 {
				errs = append(errs, fmt.Errorf("message %q queued twice: handed out as %s and as %s", text, other, h))
			}
		}
		byText[text] = h
	}
	if queuedTwice > 0 {
		errs = append(errs, fmt.Errorf("%d messages queued twice", queuedTwice))
	}
	reoffered := 0
	if len(l.fifoAt) > 0 {
		var late [][3]int
		reoffered, late = l.reoffers(ctx)
		for _, v := range late {
			l.fifoErrs = append(l.fifoErrs, fmt.Sprintf("merchant %d: message %d handed out after %d", v[0], v[1], v[2]))
		}
		if len(late) > 0 {
			explainFIFO(ctx, e, l)
		}
	}
	for i, f := range l.fifoErrs {
		if i == 5 {
			errs = append(errs, fmt.Errorf("... %d FIFO violations in all", len(l.fifoErrs)))
			break
		}
		errs = append(errs, errors.New(f))
	}
	// An acknowledged message not handed out is lost unless the queue
	// marked it handed out in a get_messages answer that never reached the
	// phone (the ingress answering it was killed): the contract marks
	// messages initiated in the same step, and never hands them out again.
	lostInFlight := 0
	if len(missing) > 0 {
		statuses, err := messageStatuses(ctx, e["CLUSTER_DATABASE_URL"], missing)
		if err != nil {
			errs = append(errs, fmt.Errorf("look up %d missing messages: %w", len(missing), err))
		}
		lost := 0
		for _, t := range missing {
			switch st, ok := statuses[t]; {
			case ok && st >= 1:
				lostInFlight++
			default:
				lost++
				if lost <= 5 {
					errs = append(errs, fmt.Errorf("acknowledged message %q never handed out (stored: %v, status %d)", t, ok, st))
				}
			}
		}
		if lost > 0 {
			errs = append(errs, fmt.Errorf("%d acknowledged messages LOST", lost))
		}
	}
	for _, tok := range l.tokens {
		c, body, err := l.call(ctx, http.MethodGet, "/api/"+tok+"/get_messages?limit=200", "", "", nil)
		if err != nil || c != 200 || strings.TrimSpace(string(body)) != "[]" {
			errs = append(errs, fmt.Errorf("final get_messages: %d %.200s %w", c, body, err))
		}
	}
	var reported, updated, reportErrs int64
	for _, s := range l.phoneStats {
		reported += s.Reported
		updated += s.Updated
		reportErrs += s.ReportErrors
	}
	fmt.Printf("verify: %d acknowledged (%d requests given up after a minute of retries, %d items in them); %d handed out; %d handed out twice; "+
		"%d acknowledged not handed out, of which %d were handed out in answers lost with a killed ingress; %d handed out that the merchant never saw acknowledged; "+
		"%d handed out after newer ones because their first answer was lost with a killed ingress (re-offered at their FIFO place); %d FIFO violations; reports: %d sent in 200-answered requests, %d updated, %d entry errors\n",
		len(l.acks), l.giveUps, l.unacked, len(l.pulls), twice, len(missing), lostInFlight, foreign, reoffered, len(l.fifoErrs), reported, updated, reportErrs)
	if n := l.unauthorizedPhones.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%d phones were refused their token", n))
	}
	return errors.Join(errs...)
}

// messageStatuses reads the queue table's status of the messages with
// these texts (the merchants' texts are unique).
func messageStatuses(ctx context.Context, url string, texts []string) (map[string]int, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT text, status FROM messages WHERE text = ANY($1)", texts)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var t string
		var st int
		if err := rows.Scan(&t, &st); err != nil {
			return nil, err
		}
		out[t] = st
	}
	return out, rows.Err()
}

// explainFIFO prints the stream positions (decoded from the hashes with the
// deployment's key) of messages handed out out of order: whether they were
// stored out of order, or handed out so.
func explainFIFO(ctx context.Context, e env, l *load) {
	nc, err := nats.Connect(e["CLUSTER_NATS_URL"])
	if err != nil {
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	codec, err := hashid.Load(ctx, js, events.NewNames("").KeysBucket(), 3)
	if err != nil {
		fmt.Println("explain FIFO:", err)
		return
	}
	bySeq := map[[2]int]string{}
	for h, a := range l.acks {
		bySeq[[2]int{a.merchant, a.seq}] = h
	}
	for i, v := range l.fifoAt {
		if i == 5 {
			break
		}
		late, early := bySeq[[2]int{v[0], v[1]}], bySeq[[2]int{v[0], v[2]}]
		pl, _ := codec.Pos(late)
		pe, _ := codec.Pos(early)
		fmt.Printf("explain FIFO: merchant %d: message %d at stream seq %d (item %d), handed out after message %d at stream seq %d (item %d)\n",
			v[0], v[1], pl>>10, pl&1023, v[2], pe>>10, pe&1023)
	}
}

// reoffers sorts the messages a phone got after newer ones: a message whose
// first hand-out went into an answer that never reached the phone (its
// ingress was killed) is re-offered at its FIFO place once the claim's
// confirmation times out, by when newer ones have gone out; tracking's
// attempts (hand-outs) tells those apart from real FIFO violations, which it
// returns.
func (l *load) reoffers(ctx context.Context) (reoffered int, late [][3]int) {
	bySeq := map[[2]int]string{}
	for h, a := range l.acks {
		bySeq[[2]int{a.merchant, a.seq}] = h
	}
	for _, v := range l.fifoAt {
		h := bySeq[[2]int{v[0], v[1]}]
		code, body, err := l.call(ctx, http.MethodGet, "/api/"+l.tokens[v[0]]+"/messages/"+h, "", "", nil)
		var m struct {
			Attempts int `json:"attempts"`
		}
		if err == nil && code == http.StatusOK && json.Unmarshal(body, &m) == nil && m.Attempts >= 2 {
			reoffered++
			continue
		}
		late = append(late, v)
	}
	return reoffered, late
}
