package ratelimit

import (
	"testing"
	"time"
)

func TestExactWindowBurstThenRefuse(t *testing.T) {
	var s state
	t0 := time.Unix(1_700_000_000, 0)
	for i := 0; i < 60; i++ {
		d := s.take(t0.Add(time.Duration(i)*100*time.Millisecond), 60)
		if !d.Allowed || d.Remaining != 59-i {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	// The 61st within the same 60 s is refused, and refusals do not count.
	at := t0.Add(30 * time.Second)
	for i := 0; i < 3; i++ {
		d := s.take(at, 60)
		if d.Allowed {
			t.Fatalf("61st allowed: %+v", d)
		}
		if d.Reset != 30*time.Second {
			t.Fatalf("reset = %v, want 30s", d.Reset)
		}
	}
	// Exactly when the first leaves the window, one more fits.
	if d := s.take(t0.Add(60*time.Second), 60); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after first left: %+v", d)
	}
	if d := s.take(t0.Add(60*time.Second), 60); d.Allowed {
		t.Fatalf("second one after 60s should wait for the next to leave: %+v", d)
	}
}

func TestExactWindowRoundTrip(t *testing.T) {
	var s state
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 5; i++ {
		s.take(now, 10)
	}
	got, err := decode(s.encode())
	if err != nil || len(got.times) != 5 {
		t.Fatalf("decode: %v %+v", err, got)
	}
	if d := got.take(now, 5); d.Allowed {
		t.Fatal("decoded window lost requests")
	}
}

func TestBucketWindowNeverExceedsLimit(t *testing.T) {
	var s state
	const limit = 10_000
	t0 := time.Unix(1_700_000_000, 500_000_000)
	allowed := 0
	// 20,000 requests spread over 30 s: exactly limit fit.
	for i := 0; i < 20_000; i++ {
		if s.take(t0.Add(time.Duration(i)*1500*time.Microsecond), limit).Allowed {
			allowed++
		}
	}
	if allowed != limit {
		t.Fatalf("allowed %d, want %d", allowed, limit)
	}
	d := s.take(t0.Add(31*time.Second), limit)
	if d.Allowed || d.Reset <= 0 || d.Reset > 61*time.Second {
		t.Fatalf("over limit: %+v", d)
	}
	// 62 s after the last request everything has left the window.
	if d := s.take(t0.Add(92*time.Second), limit); !d.Allowed || d.Remaining != limit-1 {
		t.Fatalf("after window: %+v", d)
	}
	got, err := decode(s.encode())
	if err != nil || got.bucketStart != s.bucketStart || len(got.counts) != bucketCount {
		t.Fatalf("bucket round trip: %v", err)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	if _, err := decode([]byte{9, 1, 2}); err == nil {
		t.Fatal("want error")
	}
	if _, err := decode([]byte{kindExact, 1, 2}); err == nil {
		t.Fatal("want error")
	}
}
