package httpapi

import (
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
)

func TestAuthCache(t *testing.T) {
	now := time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC)
	c := newAuthCache(time.Minute)
	a := events.AuthReply{AccountID: 1, RateLimitPerMinute: 60}
	b := events.AuthReply{AccountID: 2, RateLimitPerMinute: 70}

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
