package secret

import (
	"crypto/rand"
	"encoding/base64"
	"testing"
)

func TestVerify(t *testing.T) {
	body := []byte(`{"id":1,"name":"#1001 – Zoë"}`)
	sig := base64.StdEncoding.EncodeToString(Sign("s3cret", body))
	if !Verify("s3cret", body, sig) {
		t.Fatal("a good signature does not verify")
	}
	for _, bad := range []struct{ secret, body, sig string }{
		{"other", string(body), sig},
		{"s3cret", string(body) + " ", sig},
		{"s3cret", string(body), ""},
		{"s3cret", string(body), "not base64!"},
		{"s3cret", string(body), sig[:20]},
	} {
		if Verify(bad.secret, []byte(bad.body), bad.sig) {
			t.Errorf("verified %+v", bad)
		}
	}
}

func TestSeal(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("shpss_abc")
	if sealed == s.Seal("shpss_abc") {
		t.Fatal("two seals alike: nonce reused")
	}
	if got, err := s.Open(sealed); err != nil || got != "shpss_abc" {
		t.Fatalf("open: %q %v", got, err)
	}
	other, _ := NewSealer(make([]byte, 32))
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("opened under another key")
	}
}
