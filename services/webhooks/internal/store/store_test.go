package store

import (
	"context"
	"fmt"
	"testing"
	"testing/fstest"
	"time"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/testkit"
)

// A database made by the previous version (payloads in webhook_deliveries)
// upgrades without losing an undelivered event: the payloads move to
// webhook_payloads, claims return them, and a delivered row takes its
// payload with it.
func TestMigrationMovesPayloads(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		db := b.DB(t, Service)
		dir := "migrations/sqlite"
		if database.IsPostgres(db) {
			dir = "migrations/postgres"
		}
		old := fstest.MapFS{}
		for _, name := range []string{"20261201000001_init.up.sql", "20261201000002_chunks.up.sql"} {
			data, err := migrations.ReadFile(dir + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			old[dir+"/"+name] = &fstest.MapFile{Data: data}
		}
		if err := database.Migrate(ctx, db, old, Service); err != nil {
			t.Fatalf("old migrations: %v", err)
		}
		const chunk = `{"id":"evt_a","type":"message.sent","timestamp":"2026-12-01T00:00:00+00:00","data":{}},{"id":"evt_b","type":"message.sent","timestamp":"2026-12-01T00:00:00+00:00","data":{}}`
		const single = `{"type":"message.sent","timestamp":"2026-12-01T00:00:00+00:00","data":{"n":1}}`
		for _, r := range []struct {
			endpoint, event, typ, payload, ids string
			events                             int
		}{
			{"wh_up", "chunk_1", "batch", chunk, "evt_a,evt_b", 2},
			{"wh_up", "evt_c", "message.sent", single, "", 1},
		} {
			if _, err := db.ExecContext(ctx, `INSERT INTO webhook_deliveries (endpoint_id, event_id, type, event_ms, payload, attempts, next_attempt_ms, events, ids)
VALUES (?, ?, ?, 1, ?, 0, 0, ?, ?)`, r.endpoint, r.event, r.typ, r.payload, r.events, r.ids); err != nil {
				t.Fatalf("old row: %v", err)
			}
		}
		if err := Migrate(ctx, db); err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		st := New(db)
		now := time.Now().UnixMilli()
		got, err := st.Claim(ctx, "wh_up", now, now+60_000, 4, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Payload != chunk || got[1].Payload != single || got[0].Attempts != 1 {
			t.Fatalf("claimed after the upgrade: %+v", got)
		}
		if n := payloads(t, st); n != 2 {
			t.Fatalf("%d payload rows, want 2", n)
		}
		if _, err := st.Record(ctx, []Outcome{{
			Attempt: &Attempt{EndpointID: "wh_up", WebhookID: "batch_x", Type: "batch", Events: 3, Attempt: 1, Delivered: true, AtMs: now},
			IDs:     []int64{got[0].ID, got[1].ID}, Delivered: true,
		}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if n := payloads(t, st); n != 0 {
			t.Fatalf("%d payload rows left after delivery, want 0", n)
		}
	})
}

// Enqueue stores each row's payload once, a repeated row (a redelivered
// stream message) changes nothing, a failed POST's reschedule keeps the
// payload, and deleting the endpoint removes its payloads.
func TestPayloadsFollowTheirRows(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		st, now := withEndpoints(t, b, "wh_p")
		rows := func() []Delivery {
			return []Delivery{
				{EndpointID: "wh_p", EventID: "evt_1", Type: "message.sent", EventMs: now, Payload: `{"n":1}`},
				{EndpointID: "wh_p", EventID: "evt_2", Type: "message.sent", EventMs: now, Payload: `{"n":2}`},
			}
		}
		if err := st.Enqueue(ctx, rows()); err != nil {
			t.Fatal(err)
		}
		again := append(rows(), Delivery{EndpointID: "wh_p", EventID: "evt_3", Type: "message.sent", EventMs: now, Payload: `{"n":3}`})
		again[0].Payload = `{"n":"changed"}`
		if err := st.Enqueue(ctx, again); err != nil {
			t.Fatalf("enqueue again: %v", err)
		}
		if n := payloads(t, st); n != 3 {
			t.Fatalf("%d payload rows, want 3", n)
		}
		got, err := st.Claim(ctx, "wh_p", now, now+60_000, 4, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`{"n":1}`, `{"n":2}`, `{"n":3}`}
		if len(got) != 3 {
			t.Fatalf("claimed %d rows, want 3", len(got))
		}
		for i, d := range got {
			if d.Payload != want[i] {
				t.Fatalf("row %d payload %q, want %q", i, d.Payload, want[i])
			}
		}
		if _, err := st.Record(ctx, []Outcome{{
			Attempt: &Attempt{EndpointID: "wh_p", WebhookID: "evt_1", Type: "message.sent", Events: 1, Attempt: 1, AtMs: now},
			IDs:     []int64{got[0].ID}, NextAttemptMs: now,
		}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		retry, err := st.Claim(ctx, "wh_p", now, now+60_000, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(retry) != 1 || retry[0].Payload != want[0] || retry[0].Attempts != 2 {
			t.Fatalf("retry claim: %+v", retry)
		}
		if err := st.DeleteEndpoint(ctx, 7, "wh_p"); err != nil {
			t.Fatal(err)
		}
		if n := payloads(t, st); n != 0 {
			t.Fatalf("%d payload rows left after deleting the endpoint, want 0", n)
		}
	})
}

// withEndpoints returns a store on a migrated database of b with enabled
// endpoints of account 7 under the given ids, and the time they were made.
func withEndpoints(t *testing.T, b testkit.Backend, ids ...string) (*Store, int64) {
	t.Helper()
	ctx := context.Background()
	db := b.DB(t, Service)
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	st := New(db)
	now := time.Now().UnixMilli()
	for _, id := range ids {
		if err := st.CreateEndpoint(ctx, &Endpoint{ID: id, AccountID: 7, URL: "https://example.com/", Secret: "s", Enabled: true, CreatedMs: now, UpdatedMs: now}, 20); err != nil {
			t.Fatal(err)
		}
	}
	return st, now
}

func payloads(t *testing.T, st *Store) int {
	t.Helper()
	var n int
	if err := st.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM webhook_payloads").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Record applies a group's outcomes in order, however it batches them: a
// success after a failure of the same endpoint leaves it healthy, a failure
// after a success leaves it failing; delivered rows go with their payloads,
// failed ones wait for their retry, and every POST is logged in order with
// its fields.
func TestRecordKeepsOrder(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		st, now := withEndpoints(t, b, "wh_a", "wh_b")
		db := st.db
		var rows []Delivery
		for i, ep := range []string{"wh_a", "wh_a", "wh_a", "wh_b"} {
			rows = append(rows, Delivery{EndpointID: ep, EventID: fmt.Sprintf("evt_%d", i), Type: "message.sent", EventMs: now, Payload: "{}"})
		}
		if err := st.Enqueue(ctx, rows); err != nil {
			t.Fatal(err)
		}
		msg := "timed out" // a failure without an answer: no status
		ok := 200
		out := func(ep string, delivered bool, ids ...int64) Outcome {
			a := &Attempt{EndpointID: ep, WebhookID: fmt.Sprint(ids), Type: "message.sent", Events: len(ids), Attempt: 1, Delivered: delivered, DurationMs: 3, AtMs: now}
			if delivered {
				a.ResponseStatus = &ok
				return Outcome{Attempt: a, IDs: ids, Delivered: true}
			}
			a.Error = &msg
			return Outcome{Attempt: a, IDs: ids, NextAttemptMs: now + 60_000}
		}
		failing := func(ep string) int64 {
			t.Helper()
			var ms int64
			if err := db.QueryRowContext(ctx, "SELECT failing_since_ms FROM webhook_endpoints WHERE id = ?", ep).Scan(&ms); err != nil {
				t.Fatal(err)
			}
			return ms
		}
		// A fails, then A and B deliver: A healthy again.
		if _, err := st.Record(ctx, []Outcome{out("wh_a", false, rows[0].ID), out("wh_a", true, rows[1].ID), out("wh_b", true, rows[3].ID)}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if ms := failing("wh_a"); ms != 0 {
			t.Errorf("wh_a failing since %d after a later success, want 0", ms)
		}
		if n, _ := st.Pending(ctx, "wh_a"); n != 2 {
			t.Errorf("wh_a pending %d, want 2 (the failed and the untouched)", n)
		}
		if n, _ := st.Pending(ctx, "wh_b"); n != 0 {
			t.Errorf("wh_b pending %d, want 0", n)
		}
		if n := payloads(t, st); n != 2 {
			t.Errorf("%d payload rows, want 2", n)
		}
		// A delivers, then fails: A failing.
		if _, err := st.Record(ctx, []Outcome{out("wh_a", true, rows[2].ID), out("wh_a", false, rows[0].ID)}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if ms := failing("wh_a"); ms != now {
			t.Errorf("wh_a failing since %d after a later failure, want %d", ms, now)
		}
		log, err := st.Attempts(ctx, "wh_a", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 4 {
			t.Fatalf("wh_a log has %d rows, want 4", len(log))
		}
		want := []bool{false, true, true, false} // oldest first
		for i, a := range log {
			w := want[len(want)-1-i]
			if a.Delivered != w || (a.ResponseStatus != nil) != w || (a.Error == nil) != w || a.DurationMs != 3 || a.AtMs != now {
				t.Errorf("log row %d: %+v, want delivered %v with its status or error, duration and time", i, a, w)
			}
		}
	})
}
