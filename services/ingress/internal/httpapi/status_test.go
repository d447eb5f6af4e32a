package httpapi

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
)

// codec is a hash codec with a fixed test key.
var codec = func() *hashid.Codec {
	c, err := hashid.New([]byte("test-key-test-key-test-k"))
	if err != nil {
		panic(err)
	}
	return c
}()

var testDecode = codec.Pos

func TestParseStatus(t *testing.T) {
	h0, h4 := codec.Hash(events.Position(3, 0)), codec.Hash(events.Position(3, 4))
	req, errs, err := parseStatus([]byte(`{"device":"Pixel-8-Pro-de-Ana-ü","messages":[
		{"hash":"`+h0+`","status":2}, 5, {"status":2}, {"hash":"a1b2c3d4e5f67891","status":"2"},
		{"hash":"`+h4+`","status":3}, {"hash":"A1B2C3D4E5F67890","status":2}]}`), 1000, testDecode)
	if err != nil {
		t.Fatal(err)
	}
	if req.Device != "Pixel-8-Pro-de-" {
		t.Fatalf("device = %q, want the first 15 characters", req.Device)
	}
	// Hashes become positions; one that is not a hash names position 0 (no
	// message), which the status service answers "Unknown hash".
	wantReports := []events.ApplyReport{
		{Index: 0, Pos: events.Position(3, 0), Status: 2},
		{Index: 4, Pos: events.Position(3, 4), Status: 3},
		{Index: 5, Pos: 0, Status: 2},
	}
	if !reflect.DeepEqual(req.Reports, wantReports) {
		t.Fatalf("reports = %+v, want %+v", req.Reports, wantReports)
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
	// A device is made storable, never refused: control characters
	// (NUL first) dropped, invalid UTF-8 replaced, then cut to 15.
	for body, want := range map[string]string{
		`{"device":"Pix\u0000el\n\t","messages":[]}`:                    "Pixel",
		"{\"device\":\"Pi\xffxel\",\"messages\":[]}":                    "Pi\uFFFDxel",
		`{"device":"\u0000\u0001","messages":[]}`:                       "",
		`{"device":"a\u0000bcdefghijklmnopqrstu","messages":[]}`:        "abcdefghijklmno",
		`{"device":"Pix\u0000el","messages":[{"hash":"x","status":2}]}`: "Pixel",
	} {
		req, _, err := parseStatus([]byte(body), 10, testDecode)
		if err != nil || req.Device != want {
			t.Errorf("%q: device %q (err %v), want %q", body, req.Device, err, want)
		}
	}
	// A device of the wrong type never fails the report.
	if req, _, err := parseStatus([]byte(`{"device":42,"messages":[]}`), 10, testDecode); err != nil || req.Device != "" {
		t.Fatalf("numeric device: %+v %v", req, err)
	}
	for body, code := range map[string]string{
		`{"device":"x"}`: "invalid_body", `{"messages":{}}`: "invalid_body", `[]`: "invalid_body",
		`nope`: "invalid_json", ``: "invalid_json",
		`{"messages":[{},{}]}`: "batch_too_large",
	} {
		_, _, err := parseStatus([]byte(body), 1, testDecode)
		var e *apperr.Error
		if !errors.As(err, &e) || e.Code != code {
			t.Fatalf("%q: err %v, want %s", body, err, code)
		}
	}
}

// The one-pass path gives exactly what the entry-by-entry path gives, or
// leaves the body to it.
func TestParseStatusTypedMatchesSlowPath(t *testing.T) {
	bodies := []string{
		`{"device":"Pixel","messages":[{"hash":"a1b2c3d4e5f67890","status":2},{"hash":"a1b2c3d4e5f67891","status":3}]}`,
		`{"messages":[{"hash":"a1b2c3d4e5f67890","status":7}],"device":"Ünïcödé-name-longer-than-15"}`,
		`{"messages":[{"HASH":"a1b2c3d4e5f67890","Status":2,"extra":[1,2]}]}`,
		`{"messages":[{"hash":"a","status":2,"hash":"b"}],"device":5}`,
		`{"messages":[]}`,
		`{"messages":[{"hash":"a","status":2}]} `,
		`{"messages":[{"hash":"a","status":2.5}]}`,
		`{"messages":[{"hash":"a","status":-1}]}`,
		`{"messages":[{"hash":"a","status":2},null]}`,
		`{"messages":[{"hash":"","status":2}]}`,
		`{"messages":[{"hash":1,"status":2}]}`,
		`{"messages":[{"hash":"a","status":"2"}]}`,
		`{"messages":[{"hash":"a"}]}`,
		`{"messages":[1]}`,
		`{"messages":[{"hash":"a","status":2}],"messages":[{"hash":"b","status":3}]}`,
		`{"messages":[{"hash":"a","status":99999999999999999999}]}`,
		`{"messages":[{"hash":"a","status":2}]}x`,
		"{\"messages\":[{\"hash\":\"\xff\",\"status\":2}]}",
	}
	taken := 0
	for _, body := range bodies {
		fast, ok := parseStatusTyped([]byte(body), 1000, testDecode)
		if !ok {
			continue
		}
		taken++
		slow := slowParse(t, body)
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s:\n fast %+v\n slow %+v", body, fast, slow)
		}
	}
	if taken < 5 {
		t.Errorf("the fast path took %d of the bodies, want at least the 5 well-typed ones", taken)
	}
	if _, ok := parseStatusTyped([]byte(bodies[0]), 1, testDecode); ok {
		t.Error("fast path took a body over the entry limit")
	}
}

// slowParse is parseStatus without its fast path.
func slowParse(t *testing.T, body string) events.ApplyRequest {
	t.Helper()
	req, errs, err := parseStatusSlow([]byte(body), 1000, testDecode)
	if err != nil || len(errs) != 0 {
		t.Fatalf("%s: slow path %v %v, but the fast path accepted it", body, errs, err)
	}
	return req
}

// BenchmarkParseStatus parses a phone's report of 200 messages, through the
// one-pass path (parseStatus) and entry by entry.
func BenchmarkParseStatus(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"device":"Pixel","messages":[`)
	for i := range 200 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"hash":"%016x","status":%d}`, uint64(i)*0x9e3779b97f4a7c15, 2+i%2)
	}
	body.WriteString(`]}`)
	raw := []byte(body.String())
	for _, c := range []struct {
		name  string
		parse func([]byte, int, func(string) (int64, bool)) (events.ApplyRequest, []events.IndexError, error)
	}{{"one-pass", parseStatus}, {"entry-by-entry", parseStatusSlow}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if req, _, err := c.parse(raw, 1000, codec.Pos); err != nil || len(req.Reports) != 200 {
					b.Fatalf("parse: %d reports, %v", len(req.Reports), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200, "ns/entry")
		})
	}
}
