package secret

import (
	"encoding/base64"
	"testing"
)

func TestVerify(t *testing.T) {
	t.Parallel()
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
