package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/stores/internal/store"
)

// The repository's contract on SQLite and PostgreSQL: the account scope,
// the store limit, deletion with its records, opt-outs, the delivery and
// send records that make processing at most once, the log's paging and
// the retention sweep.
func TestStoreContract(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx := context.Background()
		db := b.DB(t, store.Service)
		if err := store.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		if err := store.Migrate(ctx, db); err != nil { // idempotent
			t.Fatal(err)
		}
		st := store.New(db)
		now := store.Ms(time.Now())
		mk := func(id string, account int64) store.Conn {
			return store.Conn{ID: id, AccountID: account, Platform: "shopify", Name: "S", Secret: "sealed",
				DefaultCountry: "US", AdminPhones: "[]", Templates: "{}", PhoneFrom: "billing", CreatedMs: now, UpdatedMs: now}
		}
		for i, id := range []string{"st_a", "st_b"} {
			c := mk(id, 1)
			c.CreatedMs += int64(i)
			if err := st.Create(ctx, &c, 2); err != nil {
				t.Fatal(err)
			}
		}
		c := mk("st_c", 1)
		if err := st.Create(ctx, &c, 2); !errors.Is(err, store.ErrTooMany) {
			t.Fatalf("third store: %v", err)
		}
		if _, err := st.Get(ctx, 2, "st_a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another account's store: %v", err)
		}
		if list, err := st.List(ctx, 1); err != nil || len(list) != 2 || list[0].ID != "st_a" {
			t.Fatalf("list: %v %v", list, err)
		}

		// Opt-outs.
		if n, err := st.AddOptOuts(ctx, 1, []string{"+14155550132", "+48512345678"}); err != nil || n != 2 {
			t.Fatalf("add: %d %v", n, err)
		}
		if n, _ := st.AddOptOuts(ctx, 1, []string{"+14155550132"}); n != 0 {
			t.Fatalf("added again: %d", n)
		}
		if out, err := store.OptedOut(ctx, st.DB(), 1, []string{"+48512345678", "+10000000000"}); err != nil ||
			len(out) != 1 || !out["+48512345678"] {
			t.Fatalf("opted out: %v %v", out, err)
		}
		if out, _ := store.OptedOut(ctx, st.DB(), 2, []string{"+48512345678"}); len(out) != 0 {
			t.Fatal("another account's opt-out applies")
		}
		if n, _ := st.RemoveOptOuts(ctx, 1, []string{"+48512345678", "+10000000000"}); n != 1 {
			t.Fatalf("removed %d", n)
		}

		// Deliveries and sends: the first claim owns the record, also
		// within one batch; a record is set only while it exists.
		d1, d2 := store.DeliveryRef{Store: "st_a", Delivery: "d1"}, store.DeliveryRef{Store: "st_b", Delivery: "d2"}
		key := store.SendRef{Store: "st_a", Key: "o1:order_paid:customer"}
		err := st.Tx(ctx, func(ctx context.Context, tx bun.IDB) error {
			if done, err := store.SeeDeliveries(ctx, tx, []store.DeliveryRef{d1, d2, d1}, now); err != nil || len(done) != 0 {
				return fmt.Errorf("first sight: %v %w", done, err)
			}
			recs, err := store.ClaimSends(ctx, tx, []store.Send{
				{StoreID: "st_a", SendKey: key.Key, DeliveryID: "d1"},
				{StoreID: "st_a", SendKey: key.Key, DeliveryID: "d2"},
				{StoreID: "st_b", SendKey: key.Key, DeliveryID: "d2"},
			}, now)
			if r := recs[key]; err != nil || len(recs) != 2 || r.DeliveryID != "d1" || r.State != store.SendPending {
				return fmt.Errorf("claim: %+v %w", recs, err)
			}
			r := recs[key]
			r.Month, r.Grp, r.Idx, r.AccountID, r.Phone, r.Body = "2026-12", "g-0", 0, 1, "+14155550132", "hi"
			gone := store.Send{StoreID: "st_x", SendKey: key.Key, State: store.SendQueued}
			return store.SetSends(ctx, tx, []store.Send{gone, r})
		})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := store.ClaimSends(ctx, st.DB(), []store.Send{{StoreID: "st_a", SendKey: key.Key, DeliveryID: "d2"}}, now)
		if r := recs[key]; err != nil || r.DeliveryID != "d1" || r.Grp != "g-0" || r.Body != "hi" || r.AccountID != 1 {
			t.Fatalf("second claim: %+v %v", recs, err)
		}
		if g, err := store.Group(ctx, st.DB(), "g-0"); err != nil || len(g) != 1 || g[0].Phone != "+14155550132" {
			t.Fatalf("group: %+v %v", g, err)
		}
		if g, _ := store.Group(ctx, st.DB(), ""); len(g) != 1 || g[0].StoreID != "st_b" { // st_x not created
			t.Fatalf("ungrouped: %+v", g)
		}

		// Orders: the last of an order in a batch wins.
		o1 := store.OrderRef{Store: "st_a", Order: "1"}
		if err := store.RememberOrders(ctx, st.DB(), []store.Order{{StoreID: "st_a", OrderID: "1", Data: "a", UpdatedMs: now},
			{StoreID: "st_a", OrderID: "1", Data: "b", UpdatedMs: now}}); err != nil {
			t.Fatal(err)
		}
		if got, err := store.RecallOrders(ctx, st.DB(), []store.OrderRef{o1, {Store: "st_a", Order: "2"}}); err != nil ||
			len(got) != 1 || got[o1] != "b" {
			t.Fatalf("recall: %v %v", got, err)
		}
		var entries []store.LogEntry
		for i := range 5 {
			entries = append(entries, store.LogEntry{StoreID: "st_a", DeliveryID: fmt.Sprint("d", i), Topic: "orders/paid",
				Decision: "queued", AtMs: now - int64(i)})
		}
		err = st.Tx(ctx, func(ctx context.Context, tx bun.IDB) error {
			return store.Finish(ctx, tx, entries, []store.DeliveryRef{{Store: "st_a", Delivery: "d1"}})
		})
		if err != nil {
			t.Fatal(err)
		}
		if done, _ := store.SeeDeliveries(ctx, st.DB(), []store.DeliveryRef{d1, d2}, now); !done[d1] || done[d2] {
			t.Fatalf("finished delivery not done: %v", done)
		}
		// Paging: newest first, never repeating.
		seen := map[int64]bool{}
		var before int64
		for {
			page, err := st.Log(ctx, "st_a", before, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				if seen[e.ID] || (before > 0 && e.ID >= before) {
					t.Fatalf("entry %d repeated or out of order", e.ID)
				}
				seen[e.ID] = true
			}
			before = page[len(page)-1].ID
		}
		if len(seen) != 5 {
			t.Fatalf("paged %d entries", len(seen))
		}

		// Retention: old log entries, old done deliveries, old records.
		old := now - 40*24*3600*1000
		if err := st.AddLog(ctx, store.LogEntry{StoreID: "st_a", DeliveryID: "old", Topic: "x", Decision: "skipped", AtMs: old}); err != nil {
			t.Fatal(err)
		}
		n, err := st.Sweep(ctx, now-30*24*3600*1000, now+1, now-90*24*3600*1000)
		if err != nil || n != 2 { // the old entry and the done delivery d1
			t.Fatalf("sweep: %d %v", n, err)
		}

		// Deleting a store removes its records.
		if err := st.Delete(ctx, 1, "st_a"); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, 1, "st_a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted twice: %v", err)
		}
		if page, _ := st.Log(ctx, "st_a", 0, 10); len(page) != 0 {
			t.Fatalf("log survived: %v", page)
		}
		if live, err := store.Existing(ctx, st.DB(), []string{"st_a", "st_b"}); err != nil || live["st_a"] || !live["st_b"] {
			t.Fatalf("existing: %v %v", live, err)
		}
	})
}
