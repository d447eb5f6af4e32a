package events

import (
	"math/rand/v2"
	"testing"
)

// decodeSlow is what the fan-out did before DecodeNotifications: Unmarshal
// into a Notification with a batch beside it.
func decodeSlow(b []byte) ([]Notification, error) {
	var w struct {
		Notification
		Batch []Notification `json:"batch"`
	}
	if err := Unmarshal(b, &w); err != nil {
		return nil, err
	}
	if len(w.Batch) == 0 {
		return []Notification{w.Notification}, nil
	}
	return w.Batch, nil
}

// checkDecode fails unless DecodeNotifications(b) equals decodeSlow(b):
// the same events, or an error from both. It returns whether the fast
// path took b.
func checkDecode(t *testing.T, name string, b []byte) bool {
	t.Helper()
	want, werr := decodeSlow(b)
	got, gerr := DecodeNotifications(b)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s: error %v, Unmarshal's %v\n%q", name, gerr, werr, b)
	}
	if werr == nil && !equalNotifications(got, want) {
		t.Fatalf("%s: decoded\n%+v\nUnmarshal\n%+v\n%q", name, got, want, b)
	}
	_, fast := decodeFast(b)
	return fast
}

func equalNotifications(a, b []Notification) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.AccountID != y.AccountID || x.Type != y.Type || x.Endpoint != y.Endpoint ||
			!x.At.Equal(y.At) || x.At.Location().String() != y.At.Location().String() ||
			string(x.Data) != string(y.Data) || (x.Data == nil) != (y.Data == nil) {
			return false
		}
	}
	return true
}

// What the producers write decodes on the fast path, to Unmarshal's
// events; everything else still decodes as Unmarshal decodes it.
func TestDecodeNotificationsEqualsUnmarshal(t *testing.T) {
	t.Parallel()
	ns := sampleNotifications(t)
	var plain []Notification // ids, types and endpoints in plain ASCII, data set
	for _, n := range ns {
		if n.ID != "id \"<&>\" ü \u2028" && n.Data != nil {
			plain = append(plain, n)
		}
	}
	batch, err := encodeNotificationBatch(plain)
	if err != nil {
		t.Fatal(err)
	}
	if !checkDecode(t, "producer batch", batch) {
		t.Error("a producer's batch took the slow path")
	}
	single, err := Marshal(plain[0])
	if err != nil {
		t.Fatal(err)
	}
	if !checkDecode(t, "producer single", single) {
		t.Error("a producer's single event took the slow path")
	}
	all, err := encodeNotificationBatch(ns)
	if err != nil {
		t.Fatal(err)
	}
	checkDecode(t, "escaped ids, null data", all)

	for name, s := range map[string]string{
		"empty":           ``,
		"not an object":   `[1]`,
		"empty object":    `{}`,
		"empty batch":     `{"batch":[]}`,
		"empty item":      `{"batch":[{}]}`,
		"spaces":          " { \"batch\" : [ { \"id\" : \"x\" , \"a\" : 1 , \"data\" : { \"k\" : [ 1 , -2.5e3 , true , null , \"s\\u00e9\\n\" ] } } ] } ",
		"trailing":        `{"batch":[{"id":"x"}]}x`,
		"two objects":     `{"id":"x"}{"id":"y"}`,
		"upper key":       `{"ID":"x","a":1,"data":{}}`,
		"unknown key":     `{"id":"x","zz":1,"data":{}}`,
		"repeated key":    `{"id":"x","id":"y","data":{}}`,
		"batch and id":    `{"batch":[{"id":"x","data":{}}],"id":"y"}`,
		"id then batch":   `{"id":"y","batch":[{"id":"x","data":{}}]}`,
		"batch not array": `{"batch":{}}`,
		"big account":     `{"id":"x","a":9223372036854775807,"data":{}}`,
		"overflow":        `{"id":"x","a":9223372036854775808,"data":{}}`,
		"negative":        `{"id":"x","a":-12,"data":{}}`,
		"minus zero":      `{"id":"x","a":-0,"data":{}}`,
		"leading zero":    `{"id":"x","a":012,"data":{}}`,
		"float account":   `{"id":"x","a":1.5,"data":{}}`,
		"string account":  `{"id":"x","a":"1","data":{}}`,
		"bad time":        `{"id":"x","at":"2026-13-01T00:00:00Z","data":{}}`,
		"offset time":     `{"id":"x","at":"2026-12-01T10:00:00.5+02:00","data":{}}`,
		"null time":       `{"id":"x","at":null,"data":{}}`,
		"null data":       `{"id":"x","data":null}`,
		"string data":     `{"id":"x","data":"s"}`,
		"number data":     `{"id":"x","data":-0.5E+2}`,
		"bad number":      `{"id":"x","data":01}`,
		"bad literal":     `{"id":"x","data":tru}`,
		"bad escape":      `{"id":"x","data":"\q"}`,
		"short escape":    `{"id":"x","data":"\u12"}`,
		"control char":    "{\"id\":\"x\",\"data\":\"a\x01b\"}",
		"invalid utf8":    "{\"id\":\"x\",\"data\":\"\xff\"}",
		"unclosed data":   `{"id":"x","data":{"k":[1,2}`,
		"missing colon":   `{"id":"x","data":{"k" 1}}`,
		"trailing comma":  `{"id":"x","data":[1,]}`,
		"escaped id":      `{"id":"x\"y","data":{}}`,
		"endpoint":        `{"id":"x","endpoint":"wh_1","data":{}}`,
		"deep":            `{"id":"x","data":` + nest(300) + `}`,
	} {
		checkDecode(t, name, []byte(s))
	}
}

func nest(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, '[')
	}
	for range n {
		b = append(b, ']')
	}
	return string(b)
}

// Random damage to a producer's batch never makes the fast path accept
// what Unmarshal refuses or decode it otherwise.
func TestDecodeNotificationsDamaged(t *testing.T) {
	t.Parallel()
	batch, err := encodeNotificationBatch(sampleNotifications(t)[:6])
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // G404: test data
	const alphabet = "{}[]\",:\\ 0123456789-+.eEtrufalsn\x01\xff"
	for i := range 3000 {
		b := append([]byte(nil), batch...)
		for range 1 + r.IntN(3) {
			j := r.IntN(len(b))
			switch r.IntN(3) {
			case 0:
				b[j] = alphabet[r.IntN(len(alphabet))]
			case 1:
				b = append(b[:j], b[j+1:]...)
			default:
				b = append(b[:j], append([]byte{alphabet[r.IntN(len(alphabet))]}, b[j:]...)...)
			}
		}
		checkDecode(t, "damaged #"+string(rune('0'+i%10)), b)
	}
}

func FuzzDecodeNotifications(f *testing.F) {
	batch, err := encodeNotificationBatch(sampleNotifications(f)[:3])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(batch)
	f.Add([]byte(`{"id":"x","a":1,"type":"t","at":"2026-12-01T00:00:00Z","data":{"k":[1,"s"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := decodeSlow(b)
		got, gerr := DecodeNotifications(b)
		if (werr == nil) != (gerr == nil) || (werr == nil && !equalNotifications(got, want)) {
			t.Fatalf("decoded %+v (%v), Unmarshal %+v (%v)", got, gerr, want, werr)
		}
	})
}

func BenchmarkDecodeNotifications1000(b *testing.B) {
	ns := sampleNotifications(b)[:6]
	var list []Notification
	for len(list) < 1000 {
		list = append(list, ns...)
	}
	body, err := encodeNotificationBatch(list[:1000])
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		decode func([]byte) ([]Notification, error)
	}{{"fast", DecodeNotifications}, {"unmarshal", decodeSlow}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
