package phonesim

import (
	"encoding/json"
	"reflect"
	"testing"
)

// parseMessages decodes every valid get_messages body like encoding/json,
// whether it takes the fast path or the fallback, and rejects invalid ones.
func TestParseMessages(t *testing.T) {
	cases := []struct {
		name string
		body string
		bad  bool
	}{
		{"empty", `[]`, false},
		{"empty spaced", " [ ]\n", false},
		{"one", `[{"phone":"+1555","text":"hi","hash":"0123456789abcdef"}]`, false},
		{"two, other order", `[{"hash":"a","text":"x","phone":"1"}, {"phone":"2","text":"y","hash":"b"}]`, false},
		{"escapes", `[{"phone":"1","text":"say \"hi\" \u00e9\n","hash":"a"}]`, false},
		{"extra field", `[{"phone":"1","text":"x","hash":"a","status":1}]`, false},
		{"unicode raw", `[{"phone":"1","text":"héllo ✓","hash":"a"}]`, false},
		{"not an array", `{"error":"x"}`, true},
		{"truncated", `[{"phone":"1","text":"x"`, true},
		{"trailing", `[] x`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseMessages([]byte(c.body), make([]Message, 3))
			if c.bad {
				if err == nil {
					t.Fatalf("accepted %q: %+v", c.body, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []Message
			if err := json.Unmarshal([]byte(c.body), &want); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

// The report body is the contract's status request: device, then one
// entry per message, the successes as 2 and the rest as 3.
func TestBuildReport(t *testing.T) {
	p := New(Config{URL: "http://x", Token: "t", Device: `my "phone"`})
	p.msgs = []Message{{Hash: "a"}, {Hash: "b"}, {Hash: "c"}}
	p.buildReport(2)
	var got struct {
		Device   string `json:"device"`
		Messages []struct {
			Hash   string `json:"hash"`
			Status int    `json:"status"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(p.body, &got); err != nil {
		t.Fatalf("%s: %v", p.body, err)
	}
	if got.Device != `my "phone"` || len(got.Messages) != 3 || got.Messages[1].Status != StatusSent || got.Messages[2].Status != StatusFailed {
		t.Fatalf("%s", p.body)
	}
}
