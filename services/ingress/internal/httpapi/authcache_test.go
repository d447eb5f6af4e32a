package httpapi

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	a := events.AuthReply{AccountID: 1, RateLimitPerMinute: 60, SubscriptionActive: true, MonthlyLimit: 100}
	b := events.AuthReply{AccountID: 2, RateLimitPerMinute: 70, SubscriptionActive: true, MonthlyLimit: 100, Used: 99}

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
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// Subscribed but not yet announced to billing: nothing is kept.
	_, gen, _ = c.get("da", "2026-01", now)
	c.put("da", "2026-01", now, gen, a)
	if _, _, ok := c.get("da", "2026-01", now); ok {
		t.Fatal("answered before billing knows the replica")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(t.Context(), events.IngressCachesConfig(be.Names, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.announce(t.Context(), kv); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(t.Context(), c.id); err != nil {
		t.Fatalf("the replica's key is not in the bucket: %v", err)
	}

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

	// A broadcast asking for an acknowledgement is answered with the
	// replica's id once the account is dropped.
	_, gen, _ = c.get("da", "2026-01", now)
	c.put("da", "2026-01", now, gen, a)
	data, err := events.Marshal(events.AccountChanged{AccountID: 1})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := nc.Request(be.Names.BillingAccountChanged(), data, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(ack.Data) != c.id {
		t.Fatalf("acknowledged as %q, want %q", ack.Data, c.id)
	}
	if _, _, ok := c.get("da", "2026-01", now); ok {
		t.Fatal("an acknowledged broadcast did not drop the account")
	}

	// An answer refusing the account is never kept: usage given back is
	// not waited for.
	_, gen, _ = c.get("dx", "2026-01", now)
	c.put("dx", "2026-01", now, gen, events.AuthReply{AccountID: 3, SubscriptionActive: true, MonthlyLimit: 5, Used: 5})
	c.put("dy", "2026-01", now, gen, events.AuthReply{AccountID: 4, MonthlyLimit: 5})
	if _, _, ok := c.get("dx", "2026-01", now); ok {
		t.Fatal("kept an answer whose limit is used up")
	}
	if _, _, ok := c.get("dy", "2026-01", now); ok {
		t.Fatal("kept an answer without a subscription")
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
	// Stopping deletes the replica's key: billing stops waiting for it.
	nc2, err := nats.Connect(be.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatal(err)
	}
	kv2, err := js2.KeyValue(t.Context(), be.Names.IngressCachesBucket())
	if err != nil {
		t.Fatal(err)
	}
	c2 := newAuthCache(time.Minute)
	sub2, err := c2.subscribe(nc2, be.Names)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub2.Unsubscribe() }()
	if err := c2.announce(t.Context(), kv2); err != nil {
		t.Fatal(err)
	}
	if _, err := kv2.Get(t.Context(), c2.id); err != nil {
		t.Fatalf("the second replica's key is not in the bucket: %v", err)
	}
	c2.stop()
	if _, err := kv2.Get(t.Context(), c2.id); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the key outlived stop: %v", err)
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
