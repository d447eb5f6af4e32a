package httpapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/apperr"
)

func TestParseStatus(t *testing.T) {
	req, errs, err := parseStatus([]byte(`{"device":"Pixel-8-Pro-de-Ana-ü","messages":[
		{"hash":"a1b2c3d4e5f67890","status":2}, 5, {"status":2}, {"hash":"a1b2c3d4e5f67891","status":"2"},
		{"hash":"a1b2c3d4e5f67892","status":3}]}`), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if req.Device != "Pixel-8-Pro-de-" {
		t.Fatalf("device = %q, want the first 15 characters", req.Device)
	}
	if len(req.Reports) != 2 || req.Reports[0].Index != 0 || req.Reports[1].Index != 4 || req.Reports[1].Status != 3 {
		t.Fatalf("reports = %+v", req.Reports)
	}
	want := []string{"1:Invalid item", "2:Unknown hash", "3:Invalid status"}
	if len(errs) != len(want) {
		t.Fatalf("errors = %+v", errs)
	}
	for i, e := range errs {
		if got := strings.Join([]string{string(rune('0' + e.Index)), e.Error}, ":"); got != want[i] {
			t.Fatalf("error %d = %s, want %s", i, got, want[i])
		}
	}
	// A device of the wrong type never fails the report.
	if req, _, err := parseStatus([]byte(`{"device":42,"messages":[]}`), 10); err != nil || req.Device != "" {
		t.Fatalf("numeric device: %+v %v", req, err)
	}
	for body, code := range map[string]string{
		`{"device":"x"}`: "invalid_body", `{"messages":{}}`: "invalid_body", `[]`: "invalid_body",
		`nope`: "invalid_json", ``: "invalid_json",
		`{"messages":[{},{}]}`: "batch_too_large",
	} {
		_, _, err := parseStatus([]byte(body), 1)
		var e *apperr.Error
		if !errors.As(err, &e) || e.Code != code {
			t.Fatalf("%q: err %v, want %s", body, err, code)
		}
	}
}
