package secret

import (
	"strings"
	"testing"
)

// The test vector published with the Standard Webhooks specification (and
// Svix's documentation of the same scheme).
func TestSignMatchesPublishedVector(t *testing.T) {
	t.Parallel()
	key, err := Key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	a, b := Generate(), Generate()
	if a == b || !strings.HasPrefix(a, Prefix) {
		t.Fatalf("%q %q", a, b)
	}
	k, err := Key(a)
	if err != nil || len(k) != Size {
		t.Fatalf("key of %q: %d bytes, %v", a, len(k), err)
	}
}
