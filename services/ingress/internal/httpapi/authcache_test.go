package httpapi

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

func TestAuthCache(t *testing.T) {
	now := time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC)
	be := testkit.Embedded(t)
	nc, err := nats.Connect(be.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := newAuthCache(time.Minute)
	a := events.AuthReply{AccountID: 1, RateLimitPerMinute: 60}
	b := events.AuthReply{AccountID: 2, RateLimitPerMinute: 70}

	// Not told of changes yet: nothing is kept.
	_, gen, _ := c.get("da", "2026-01", now)
	c.put("da", "2026-01", now, gen, a)
	if _, _, ok := c.get("da", "2026-01", now); ok {
		t.Fatal("answered before it hears broadcasts")
	}
	sub, err := c.subscribe(nc, be.Names)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	_, gen, ok := c.get("da", "2026-01", now)
	if ok {
		t.Fatal("empty cache answered")
	}
	c.put("da", "2026-01", now, gen, a)
	c.put("db", "2026-01", now, gen, b)
	if got, _, ok := c.get("da", "2026-01", now.Add(59*time.Second)); !ok || got != a {
		t.Fatalf("within the ttl: %v %v", got, ok)
	}
	if _, _, ok := c.get("da", "2026-01", now.Add(time.Minute)); ok {
		t.Fatal("answered past the ttl")
	}
	c.put("da", "2026-01", now, gen, a)
	if _, _, ok := c.get("da", "2026-02", now.Add(time.Second)); ok {
		t.Fatal("answered in another month")
	}

	// A drop forgets the account's entries only, and a lookup that began
	// before it is not stored.
	_, gen, _ = c.get("da", "2026-01", now)
	c.put("da", "2026-01", now, gen, a)
	_, stale, _ := c.get("dx", "2026-01", now)
	c.drop(1)
	if _, _, ok := c.get("da", "2026-01", now); ok {
		t.Fatal("dropped account answered")
	}
	if got, _, ok := c.get("db", "2026-01", now); !ok || got != b {
		t.Fatal("other account forgotten")
	}
	c.put("da", "2026-01", now, stale, a)
	if _, _, ok := c.get("da", "2026-01", now); ok {
		t.Fatal("a lookup older than the drop was stored")
	}

	// A broadcast over NATS drops its account before the next lookup.
	_, gen, _ = c.get("da", "2026-01", now)
	c.put("da", "2026-01", now, gen, a)
	data, err := events.Marshal(events.AccountChanged{AccountID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(be.Names.BillingAccountChanged(), data); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the server has it; our reader gets it next
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, ok := c.get("da", "2026-01", now); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a broadcast did not drop the account")
		}
		time.Sleep(time.Millisecond) // the reader hands it over asynchronously
	}

	// A connection that is not up forgets everything and keeps nothing.
	_, gen, _ = c.get("db", "2026-01", now)
	c.put("db", "2026-01", now, gen, b)
	nc.Close()
	if _, _, ok := c.get("db", "2026-01", now); ok {
		t.Fatal("answered while the connection is down")
	}
	_, gen, _ = c.get("db", "2026-01", now)
	c.put("db", "2026-01", now, gen, b)
	if n := len(c.entries); n != 0 {
		t.Fatalf("stored %d while the connection is down", n)
	}

	c.stop()
	_, gen, _ = c.get("db", "2026-01", now)
	c.put("db", "2026-01", now, gen, b)
	if _, _, ok := c.get("db", "2026-01", now); ok {
		t.Fatal("stored after stop")
	}

	off := newAuthCache(0)
	off.put("da", "2026-01", now, 0, a)
	if _, _, ok := off.get("da", "2026-01", now); ok {
		t.Fatal("disabled cache answered")
	}
	off.drop(1)
	off.dropAll()
	off.stop()
}
