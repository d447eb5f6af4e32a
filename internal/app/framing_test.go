package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/testkit"
)

// The HTTP layer seen from a raw TCP client: request smuggling, framing
// errors, error bodies, exact paths, HEAD. Every case writes exact bytes to
// the real server (Run on :0) and reads what comes back.

const smuggled = "GET /api/app-versions HTTP/1.1\r\nHost: x\r\n\r\n"

// pad is the body prefix that used to push a smuggled request just past the
// 8 KiB fasthttp reads ahead of a streamed body.
var pad = strings.Repeat(" ", 8192)

func TestFramingRefusedBodies(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{"APITOSMS_INGRESS_MAX_BODY_BYTES": "65536"})
		_, tok := account(t, p.base, 1000, 1000)
		_, slow := account(t, p.base, 1000, 1)
		if r := do(t, "GET", p.base+"/api/"+slow+"/get_messages", nil); r.status != 200 {
			t.Fatalf("first request: %d", r.status)
		}
		r := admin(t, "POST", p.base+"/admin/v1/accounts", map[string]any{"name": "NoSub", "email": "n@example.com"})
		noSub := r.json(t)["apiToken"].(string)
		badTok := strings.Repeat("0", 64)
		body := pad + smuggled

		// Refused before the body is read: drained, and the connection
		// still serves the next request (not the smuggled one).
		for _, c := range []struct {
			name, path string
			status     int
			code       string
		}{
			{"401", "/api/" + badTok + "/queue", 401, "invalid_token"},
			{"429", "/api/" + slow + "/queue", 429, "rate_limited"},
			{"402", "/api/" + noSub + "/queue", 402, "subscription_required"},
			{"admin 401", "/admin/v1/accounts", 401, "unauthorized"},
			{"404", "/api/" + tok + "/nowhere", 404, "not_found"},
		} {
			t.Run(c.name, func(t *testing.T) {
				rc := dialRaw(t, p.base)
				rc.write(t, post(c.path, "Content-Length: "+fmt.Sprint(len(body)), body))
				rc.expectError(t, "POST", c.status, c.code)
				rc.expectHealthz(t, true)
			})
		}

		t.Run("chunked 401", func(t *testing.T) {
			rc := dialRaw(t, p.base)
			rc.write(t, post("/api/"+badTok+"/queue", "Transfer-Encoding: chunked", chunked(body)))
			rc.expectError(t, "POST", 401, "invalid_token")
			rc.expectHealthz(t, true)
		})

		t.Run("chunked body read", func(t *testing.T) {
			rc := dialRaw(t, p.base)
			rc.write(t, post("/api/"+tok+"/queue", "Transfer-Encoding: chunked", chunked(`[{"phone":"+15550000001","message":"chunked"}]`)))
			if resp, data := rc.read(t, "POST"); resp.StatusCode != 200 {
				t.Fatalf("chunked queue: %d %s", resp.StatusCode, data)
			}
			rc.expectHealthz(t, true)
		})

		// More than the server drains: the answer is still readable, then
		// the connection closes without answering the smuggled request.
		t.Run("401 large body", func(t *testing.T) {
			big := strings.Repeat(" ", 400<<10) + smuggled
			rc := dialRaw(t, p.base)
			rc.write(t, post("/api/"+badTok+"/queue", "Content-Length: "+fmt.Sprint(len(big)), big))
			rc.expectError(t, "POST", 401, "invalid_token")
			rc.expectHealthz(t, false)
		})

		t.Run("413", func(t *testing.T) {
			big := strings.Repeat(" ", 70000) + smuggled
			rc := dialRaw(t, p.base)
			rc.write(t, post("/api/"+tok+"/queue", "Content-Length: "+fmt.Sprint(len(big)), big))
			resp := rc.expectError(t, "POST", 413, "body_too_large")
			if !resp.Close {
				t.Errorf("413 without Connection: close")
			}
			rc.expectClosed(t)
		})

		// curl's way: Expect: 100-continue, the body after the interim
		// answer, the whole of it before reading on.
		t.Run("413 expect", func(t *testing.T) {
			big := strings.Repeat(" ", 200000)
			rc := dialRaw(t, p.base)
			rc.write(t, "POST /api/"+tok+"/queue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: "+fmt.Sprint(len(big))+"\r\n\r\n")
			if resp, _ := rc.read(t, "POST"); resp.StatusCode != 100 {
				t.Fatalf("interim answer %d, want 100", resp.StatusCode)
			}
			rc.write(t, big)
			rc.expectError(t, "POST", 413, "body_too_large")
			rc.expectClosed(t)
		})

		// An ordinary client that writes the whole body before reading
		// gets the 413, not a connection reset.
		t.Run("413 net/http", func(t *testing.T) {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			resp, err := cl.Post(p.base+"/api/"+tok+"/queue", "application/json", bytes.NewReader(make([]byte, 4<<20)))
			if err != nil {
				t.Fatalf("413 as seen by net/http: %v", err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkErrorBody(t, resp, data, 413, "body_too_large")
		})

		t.Run("pipelined", func(t *testing.T) {
			rc := dialRaw(t, p.base)
			q := `[{"phone":"+15550000002","message":"pipelined"}]`
			rc.write(t, post("/api/"+tok+"/queue", "Content-Length: "+fmt.Sprint(len(q)), q)+
				"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, data := rc.read(t, "POST"); resp.StatusCode != 200 {
				t.Fatalf("pipelined queue: %d %s", resp.StatusCode, data)
			}
			if resp, data := rc.read(t, "GET"); resp.StatusCode != 200 || string(data) != `{"status":"ok"}` {
				t.Fatalf("pipelined healthz: %d %s", resp.StatusCode, data)
			}
			rc.expectHealthz(t, true)
		})
	})
}

func TestFramingErrors(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		_, tok := account(t, p.base, 1000, 1000)
		st := "POST /api/" + tok + "/status HTTP/1.1\r\nHost: x\r\n"
		report := `{"messages":[]}`
		for _, c := range []struct {
			name, raw string
			status    int
			code      string
		}{
			{"two Content-Length", st + "Content-Length: 15\r\nContent-Length: 60\r\n\r\n" + report + smuggled, 400, "bad_request"},
			{"Content-Length list", st + "Content-Length: 15, 15\r\n\r\n" + report, 400, "bad_request"},
			{"Content-Length sign", st + "Content-Length: +15\r\n\r\n" + report, 400, "bad_request"},
			{"Content-Length overflow", st + "Content-Length: 18446744073709551631\r\n\r\n" + report, 400, "bad_request"},
			{"TE and CL", st + "Transfer-Encoding: chunked\r\nContent-Length: 15\r\n\r\n" + chunked(report), 400, "bad_request"},
			{"CL and TE", st + "Content-Length: 15\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(report), 400, "bad_request"},
			{"two TE", st + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(report), 400, "bad_request"},
			{"TE gzip", st + "Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked(report), 501, "unsupported_transfer_encoding"},
			{"TE on HTTP/1.0", "POST /api/" + tok + "/status HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(report), 400, "bad_request"},
			{"obs-fold", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, "bad_request"},
			{"obs-fold tab", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tTransfer-Encoding: chunked\r\n\r\n", 400, "bad_request"},
			{"bare LF request line", "GET /healthz HTTP/1.1\nHost: x\r\n\r\n", 400, "bad_request"},
			{"bare LF field", "GET /healthz HTTP/1.1\r\nHost: x\nX-A: a\r\n\r\n", 400, "bad_request"},
			{"bare LF end", "GET /healthz HTTP/1.1\r\nHost: x\n\n", 400, "bad_request"},
			{"bare CR", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, "bad_request"},
			{"space before colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", 400, "bad_request"},
			{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request"},
			{"two Host", "GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "bad_request"},
			{"control in target", "GET /healthz\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"},
			{"no version", "GET /healthz\r\nHost: x\r\n\r\n", 400, "bad_request"},
			{"HTTP/2.0", "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"},
			{"head too large", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + strings.Repeat("a", 5000) + "\r\n\r\n", 431, "headers_too_large"},
			{"chunk extension LF", st + "Transfer-Encoding: chunked\r\n\r\nf;a\nb\r\n" + report + "\r\n0\r\n\r\n", 400, "bad_request"},
			{"chunk size junk", st + "Transfer-Encoding: chunked\r\n\r\nfx\r\n" + report + "\r\n0\r\n\r\n", 400, "bad_request"},
			{"chunk without CRLF", st + "Transfer-Encoding: chunked\r\n\r\nf\r\n" + report + "XX0\r\n\r\n", 400, "bad_request"},
			{"chunk trailer", st + "Transfer-Encoding: chunked\r\n\r\n" + strings.TrimSuffix(chunked(report), "\r\n") + "0ab: c\r\n\r\n", 400, "bad_request"},
			{"unknown method", "FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501, "not_implemented"},
		} {
			t.Run(c.name, func(t *testing.T) {
				rc := dialRaw(t, p.base)
				rc.write(t, c.raw)
				method := strings.SplitN(c.raw, " ", 2)[0]
				resp := rc.expectError(t, method, c.status, c.code)
				if c.code == "not_implemented" {
					return // a well-framed request: the connection may stay
				}
				if !resp.Close {
					t.Errorf("%d without Connection: close", c.status)
				}
				rc.expectClosed(t)
			})
		}

		// A bad request after a good one on the same connection: the good
		// one's answer, then the 400, then the close.
		t.Run("bad after good", func(t *testing.T) {
			rc := dialRaw(t, p.base)
			rc.write(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n")
			if resp, data := rc.read(t, "GET"); resp.StatusCode != 200 || string(data) != `{"status":"ok"}` {
				t.Fatalf("first answer: %d %s", resp.StatusCode, data)
			}
			rc.expectError(t, "GET", 400, "bad_request")
			rc.expectClosed(t)
		})

		// Identical repeated Content-Length is one length (RFC 9110 §8.6).
		t.Run("same Content-Length twice", func(t *testing.T) {
			rc := dialRaw(t, p.base)
			rc.write(t, st+"Content-Length: 15\r\nContent-Length: 15\r\n\r\n"+report)
			if resp, data := rc.read(t, "POST"); resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, data)
			}
			rc.expectHealthz(t, true)
		})
	})
}

func TestErrorBodiesAndPaths(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		id, tok := account(t, p.base, 1000, 1000)
		bearer := "Authorization: Bearer " + adminToken + "\r\n"

		// Requests the server cannot parse, or answers itself: the
		// contract's JSON, never a byte of the request.
		for _, c := range []struct {
			name, raw string
			status    int
		}{
			{"bad header", "GET /api/" + tok + "/get_messages HTTP/1.1\r\nHost: x\r\n" + bearer + "X-A: a\rb\r\n\r\n", 400},
			{"bad request line", "GET /api/" + tok + "/get_messages\x7f HTTP/1.1\r\nHost: x\r\n" + bearer + "\r\n", 400},
			{"head too large", "GET /api/" + tok + "/get_messages HTTP/1.1\r\nHost: x\r\n" + bearer + "X-A: " + strings.Repeat("a", 5000) + "\r\n\r\n", 431},
			{"unknown route", "GET /api/" + tok + "/nowhere HTTP/1.1\r\nHost: x\r\n" + bearer + "\r\n", 404},
			{"wrong method", "PUT /api/" + tok + "/queue HTTP/1.1\r\nHost: x\r\n" + bearer + "Content-Length: 0\r\n\r\n", 405},
			{"unknown method", "BREW /api/" + tok + "/queue HTTP/1.1\r\nHost: x\r\n" + bearer + "\r\n", 501},
		} {
			t.Run(c.name, func(t *testing.T) {
				rc := dialRaw(t, p.base)
				rc.write(t, c.raw)
				resp, data := rc.read(t, "GET")
				if resp.StatusCode != c.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, data)
				}
				checkErrorBody(t, resp, data, c.status, "")
				for _, secret := range []string{tok, adminToken} {
					if strings.Contains(string(data), secret) || strings.Contains(fmt.Sprint(resp.Header), secret) {
						t.Fatalf("answer repeats the request: %v %s", resp.Header, data)
					}
				}
			})
		}

		// Paths match exactly: no case folding, no trailing slash, no
		// escapes or dot segments.
		acc := fmt.Sprintf("/admin/v1/accounts/%d", id)
		for _, c := range []struct{ method, path string }{
			{"GET", "/Admin/v1/accounts/" + fmt.Sprint(id)},
			{"GET", "/admin/V1/accounts/" + fmt.Sprint(id)},
			{"GET", acc + "/"},
			{"POST", "/admin/v1/accounts/"},
			{"POST", "/ADMIN/v1/accounts"},
			{"GET", "/%61dmin/v1/accounts/" + fmt.Sprint(id)},
			{"GET", "//admin/v1/accounts/" + fmt.Sprint(id)},
			{"GET", "/x/../admin/v1/accounts/" + fmt.Sprint(id)},
			{"GET", "/api/" + tok + "/GET_MESSAGES"},
			{"GET", "/api/" + tok + "/get_messages/"},
			{"POST", "/API/" + tok + "/queue"},
			{"POST", "/api/" + tok + "/queue/"},
			{"GET", "/api/app-versions/"},
			{"GET", "/API/app-version"},
			{"GET", "/download/app.apk/"},
			{"GET", "/Healthz"},
		} {
			rc := dialRaw(t, p.base)
			body := `{"name":"x","email":"x@y"}`
			if c.method == "GET" {
				body = ""
			}
			rc.write(t, c.method+" "+c.path+" HTTP/1.1\r\nHost: x\r\n"+bearer+"Content-Length: "+fmt.Sprint(len(body))+"\r\n\r\n"+body)
			resp, data := rc.read(t, c.method)
			if resp.StatusCode != 404 {
				t.Errorf("%s %s: %d %s, want 404", c.method, c.path, resp.StatusCode, data)
				continue
			}
			checkErrorBody(t, resp, data, 404, "not_found")
			if strings.Contains(string(data), tok) {
				t.Errorf("404 repeats the token: %s", data)
			}
		}
		// The documented paths themselves still answer.
		if r := admin(t, "GET", p.base+acc, nil); r.status != 200 {
			t.Fatalf("GET %s: %d %s", acc, r.status, r.body)
		}
		if r := admin(t, "POST", p.base+"/admin/v1/accounts", map[string]string{"name": "x", "email": "x@y"}); r.status != 201 {
			t.Fatalf("POST /admin/v1/accounts: %d %s", r.status, r.body)
		}
		if r := admin(t, "GET", p.base+"/admin/v1/app-versions", nil); r.status != 200 {
			t.Fatalf("GET /admin/v1/app-versions: %d %s", r.status, r.body)
		}
	})
}

func TestHeadChangesNothing(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, nil)
		_, tok := account(t, p.base, 1000, 1000)
		if r := do(t, "POST", p.base+"/api/"+tok+"/queue", items("head", 2)); r.status != 200 {
			t.Fatalf("queue: %d %s", r.status, r.body)
		}
		g := p.base + "/api/" + tok + "/get_messages"
		for i := 0; i < 3; i++ {
			if r := do(t, "HEAD", g, nil); r.status != 405 || r.header.Get("Allow") != "GET, POST" {
				t.Fatalf("HEAD get_messages: %d Allow %q, want 405 with GET, POST", r.status, r.header.Get("Allow"))
			}
		}
		if got := do(t, "GET", g, nil).list(t); len(got) != 2 || got[0]["text"] != "head-0" || got[1]["text"] != "head-1" {
			t.Fatalf("GET after HEAD: %v", got)
		}

		// A HEAD on a download is answered and not counted.
		apk := append([]byte("PK\x03\x04"), bytes.Repeat([]byte("apk"), 1000)...)
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("version", "1.0.0")
		_ = w.WriteField("versionCode", "7")
		_ = w.WriteField("releaseNotes", "first")
		fw, _ := w.CreateFormFile("file", "app.apk")
		_, _ = fw.Write(apk)
		_ = w.Close()
		r := do(t, "POST", p.base+"/admin/v1/app-versions", buf.Bytes(), "Authorization", "Bearer "+adminToken, "Content-Type", w.FormDataContentType())
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		if r := admin(t, "POST", p.base+"/admin/v1/app-versions/7/activate", nil); r.status != 200 {
			t.Fatalf("activate: %d %s", r.status, r.body)
		}
		for _, path := range []string{"/download/app.apk", "/api/download/7"} {
			r := do(t, "HEAD", p.base+path, nil)
			if r.status != 200 || r.header.Get("Content-Length") != fmt.Sprint(len(apk)) || len(r.body) != 0 {
				t.Fatalf("HEAD %s: %d %v", path, r.status, r.header)
			}
		}
		if n := downloads(t, p.base, 7); n != 0 {
			t.Fatalf("downloads after HEAD: %v", n)
		}
		if r := do(t, "GET", p.base+"/download/app.apk", nil); r.status != 200 || !bytes.Equal(r.body, apk) {
			t.Fatalf("GET download: %d", r.status)
		}
		if n := downloads(t, p.base, 7); n != 1 {
			t.Fatalf("downloads after one GET: %v", n)
		}
	})
}

func downloads(t *testing.T, base string, code float64) float64 {
	t.Helper()
	r := admin(t, "GET", base+"/admin/v1/app-versions", nil)
	for _, v := range r.json(t)["versions"].([]any) {
		if m := v.(map[string]any); m["versionCode"] == code {
			n, _ := m["downloads"].(float64)
			return n
		}
	}
	t.Fatalf("version %v not listed: %s", code, r.body)
	return 0
}

// rawConn is a client connection that writes exact bytes.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, base string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) write(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// read reads one response to a request made with method.
func (c *rawConn) read(t *testing.T, method string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, data
}

// expectError reads one response and checks it is the contract's error.
func (c *rawConn) expectError(t *testing.T, method string, status int, code string) *http.Response {
	t.Helper()
	resp, data := c.read(t, method)
	checkErrorBody(t, resp, data, status, code)
	return resp
}

// expectHealthz sends GET /healthz (last on the connection) and checks the
// next answer is its answer, not one to bytes smuggled earlier; with
// keptOpen false the server may instead have closed the connection.
func (c *rawConn) expectHealthz(t *testing.T, keptOpen bool) {
	t.Helper()
	_, werr := io.WriteString(c.Conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		if !keptOpen && (werr != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
			return
		}
		t.Fatalf("no answer to the next request (write %v): %v", werr, err)
	}
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(data) != `{"status":"ok"}` {
		t.Fatalf("next answer is not /healthz's: %d %s", resp.StatusCode, data)
	}
	c.expectClosed(t)
}

// expectClosed checks nothing more comes: the server closed the connection.
func (c *rawConn) expectClosed(t *testing.T) {
	t.Helper()
	data, err := io.ReadAll(c.br)
	if len(data) > 0 {
		t.Fatalf("more after the answer: %q", data)
	}
	if err != nil && !isReset(err) {
		t.Fatalf("connection not closed: %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// checkErrorBody checks a response is the contract's error: status, JSON
// with charset, "error" and (if given) "code".
func checkErrorBody(t *testing.T, resp *http.Response, data []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q (%s)", ct, data)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("body %q: %v", data, err)
	}
	if s, _ := m["error"].(string); s == "" {
		t.Fatalf("no error sentence: %s", data)
	}
	if c, _ := m["code"].(string); c == "" || code != "" && c != code {
		t.Fatalf("code %q, want %q: %s", c, code, data)
	}
}

func post(path, framing, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Type: application/json\r\n" +
		framing + "\r\n\r\n" + body
}

// chunked encodes s in chunks of at most 4000 bytes.
func chunked(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := min(len(s), 4000)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, s[:n])
		s = s[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// headSafe are the GET routes whose HEAD is harmless: they only read (a
// download's HEAD is answered without counting it). fiber's Get registers
// HEAD too, so a new GET route fails this test until it is either listed
// here (it only reads) or registered with Add(fiber.MethodGet, ...) (it
// changes state, as get_messages does).
var headSafe = map[string]bool{
	"/healthz": true, "/readyz": true, "/metrics": true, "/openapi.yaml": true,
	"/api/app-version": true, "/api/app-versions": true,
	"/download/app.apk": true, "/api/download/:code": true,
	"/admin/v1/accounts": true, "/admin/v1/accounts/:id": true, "/admin/v1/app-versions": true,
	"/api/:token/messages": true, "/api/:token/messages/:hash": true,
	"/api/:token/webhooks": true, "/api/:token/webhooks/:id": true, "/api/:token/webhooks/:id/deliveries": true,
	"/api/:token/phones":   true,
	"/api/:token/settings": true,
	"/api/:token/stores":   true, "/api/:token/stores/:id": true, "/api/:token/stores/:id/log": true, "/api/:token/opt-outs": true,
}

// TestHeadOnlyOnReadOnlyRoutes: no route answers HEAD unless its GET only
// reads (a HEAD, from monitors or curl -I, must never change state).
func TestHeadOnlyOnReadOnlyRoutes(t *testing.T) {
	heads := 0
	for _, r := range allRoutes(t) {
		if r.Method != fiber.MethodHead {
			continue
		}
		heads++
		// Console pages: every GET only reads (state changes are POSTs
		// carrying a CSRF token), so their HEAD is harmless.
		if !headSafe[r.Path] && !consolePage(strings.TrimSuffix(r.Path, "/")) {
			t.Errorf("HEAD %s is answered: if its GET changes state register it with Add(fiber.MethodGet, ...); if it only reads, list it in headSafe", r.Path)
		}
	}
	if heads == 0 {
		t.Fatal("no HEAD route at all: downloads must answer HEAD")
	}
}

// allRoutes builds every service (nothing runs) and returns the routes the
// process's HTTP server would serve.
func allRoutes(t *testing.T) []fiber.Route {
	t.Helper()
	b := testkit.Embedded(t)
	ctx := context.Background()
	reader := config.NewReader(b.Env(map[string]string{"APITOSMS_ADMIN_TOKEN": adminToken}))
	in := &infra{common: config.ReadCommon(reader), reader: reader, broker: b.Broker(t), names: b.Names,
		reg: prometheus.NewRegistry(), log: testkit.Logger(t), dbs: map[string]*bun.DB{}}
	t.Cleanup(func() {
		for _, db := range in.dbs {
			db.Close()
		}
	})
	var svcs []service
	for _, tg := range targets {
		s, err := tg.prepare(reader, in.common)(ctx, in)
		if err != nil {
			t.Fatalf("build %s: %v", tg.name, err)
		}
		svcs = append(svcs, s)
	}
	return newHTTP(in, svcs).GetRoutes(true)
}
