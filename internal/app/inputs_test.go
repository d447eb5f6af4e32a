package app

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

// Every string from outside is stored or refused in the contract's shape,
// the same on SQLite and PostgreSQL (whose text cannot hold NUL): a phone's
// device name is made storable (a report is never lost over it); operator
// inputs with control characters or invalid UTF-8 are refused with 400; a
// message text with NUL is refused for that item only.
func TestInputsStorableOrRefused(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		id, tok := account(t, p.base, 1000, 1000)

		refused := func(what string, r response, sentence string) {
			t.Helper()
			if r.status != 400 || r.header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("%s: %d %q %s, want 400 JSON", what, r.status, r.header.Get("Content-Type"), r.body)
				return
			}
			if m := r.json(t); m["code"] != "invalid_body" || m["error"] != sentence {
				t.Errorf("%s: %s, want invalid_body %q", what, r.body, sentence)
			}
		}

		// Operator inputs (§6): refused, naming the field.
		accounts := p.base + "/admin/v1/accounts"
		refused("NUL in name", admin(t, "POST", accounts, `{"name":"Shop\u0000","email":"a@example.com"}`),
			"name must not contain control characters")
		refused("line break in name", admin(t, "POST", accounts, `{"name":"Shop\nX","email":"a@example.com"}`),
			"name must not contain control characters")
		refused("invalid UTF-8 in name", admin(t, "POST", accounts, "{\"name\":\"Sh\xffop\",\"email\":\"a@example.com\"}"),
			"name must be valid UTF-8")
		refused("control character in email", admin(t, "POST", accounts, `{"name":"Shop","email":"a@example.com\u0007"}`),
			"email must not contain control characters")
		sub := fmt.Sprintf("%s/admin/v1/accounts/%d/subscription", p.base, id)
		refused("NUL in plan", admin(t, "PUT", sub, `{"plan":"pro\u0000","monthlyLimit":10}`),
			"plan must not contain control characters")
		if r := admin(t, "POST", accounts, `{"name":"Café ☕ Shop","email":"a@example.com"}`); r.status != 201 {
			t.Errorf("a name with Unicode: %d %s", r.status, r.body)
		}

		versions := p.base + "/admin/v1/app-versions"
		refused("NUL in version", upload(t, versions, "1.0\x00", "5", "notes"),
			"version must not contain control characters")
		refused("NUL in release notes", upload(t, versions, "1.0", "5", "fixes\x00"),
			"releaseNotes must not contain control characters other than tabs and line breaks")
		if r := upload(t, versions, "1.0", "5", "- Bug fixes\r\n- More\n\tindented"); r.status != 201 {
			t.Errorf("multi-line release notes: %d %s", r.status, r.body)
		}

		// Queue (§2): a text with NUL is refused for that item; the rest is
		// queued and handed out (nothing poisons the queue's store).
		r := do(t, "POST", p.base+"/api/"+tok+"/queue",
			`[{"phone":"+15550000001","message":"a\u0000b"},{"phone":"+15550000002","message":"ok"}]`)
		m := r.json(t)
		if r.status != 200 || m["queued"] != 1.0 || m["failed"] != 1.0 {
			t.Fatalf("queue with a NUL item: %d %s", r.status, r.body)
		}
		if e := m["errors"].([]any)[0].(map[string]any); e["index"] != 0.0 || e["error"] != "Message must not contain NUL characters" {
			t.Errorf("NUL item error: %s", r.body)
		}
		if r := do(t, "POST", p.base+"/api/"+tok+"/queue", `{"phone":"+15550000001","text":"\u0000"}`); r.status != 422 {
			t.Errorf("only a NUL item: %d %s", r.status, r.body)
		}
		got := do(t, "GET", p.base+"/api/"+tok+"/get_messages", nil)
		list := got.list(t)
		if got.status != 200 || len(list) != 1 || list[0]["text"] != "ok" {
			t.Fatalf("get_messages: %d %s", got.status, got.body)
		}

		// Status (§4): a device with NUL, control characters and invalid
		// UTF-8 is made storable; the report is applied.
		r = do(t, "POST", p.base+"/api/"+tok+"/status",
			"{\"device\":\"\\u0000Pix\\u0007el\xff 8 Pro Max Ultra\",\"messages\":[{\"hash\":\""+list[0]["hash"].(string)+"\",\"status\":2}]}")
		if r.status != 200 || r.json(t)["updated"] != 1.0 {
			t.Fatalf("report with a NUL in device: %d %s", r.status, r.body)
		}
		var device string
		db := b.DB(t, "status")
		if err := db.NewRaw("SELECT device FROM deliveries WHERE device IS NOT NULL").Scan(context.Background(), &device); err != nil {
			t.Fatal(err)
		}
		if device != "Pixel\uFFFD 8 Pro Ma" {
			t.Errorf("device stored as %q, want %q", device, "Pixel\uFFFD 8 Pro Ma")
		}
	})
}

// upload posts an APK version as the operator.
func upload(t *testing.T, url, version, code, notes string) response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("version", version)
	_ = w.WriteField("versionCode", code)
	_ = w.WriteField("releaseNotes", notes)
	f, _ := w.CreateFormFile("file", "app.apk")
	_, _ = f.Write([]byte("PK\x03\x04 not really an apk"))
	_ = w.Close()
	return do(t, "POST", url, body.Bytes(), "Authorization", "Bearer "+adminToken, "Content-Type", w.FormDataContentType())
}
