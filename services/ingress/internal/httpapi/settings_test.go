package httpapi

import (
	"errors"
	"testing"

	"github.com/apitosms/apitosms/libs/apperr"
)

// A PATCH body is an object; each known field of the wrong type is refused
// with its own sentence; null and unknown fields change nothing.
func TestParseSettings(t *testing.T) {
	cases := []struct {
		body    string
		wantErr *apperr.Error
		set     string // which fields are set: l, o, m
	}{
		{`{}`, nil, ""},
		{`{"leaseSeconds":120,"onLeaseExpiry":"expire","maxAttempts":2}`, nil, "lom"},
		{`{"leaseSeconds":null,"other":1}`, nil, ""},
		{`{"leaseSeconds":"120"}`, errSettingsLease, ""},
		{`{"leaseSeconds":1.5}`, errSettingsLease, ""},
		{`{"onLeaseExpiry":1}`, errSettingsExpiry, ""},
		{`{"maxAttempts":true}`, errSettingsAttempts, ""},
		{`[]`, apperr.ErrInvalidJSON, ""},
		{`{`, apperr.ErrInvalidJSON, ""},
		{``, apperr.ErrInvalidJSON, ""},
	}
	for _, tc := range cases {
		req, err := parseSettings([]byte(tc.body))
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: err %v, want %v", tc.body, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.body, err)
			continue
		}
		set := ""
		if req.LeaseSeconds != nil {
			set += "l"
		}
		if req.OnLeaseExpiry != nil {
			set += "o"
		}
		if req.MaxAttempts != nil {
			set += "m"
		}
		if set != tc.set {
			t.Errorf("%s: fields set %q, want %q", tc.body, set, tc.set)
		}
	}
}
