package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/apitosms/apitosms/api"
	"github.com/apitosms/apitosms/libs/testkit"
)

const apkType = "application/vnd.android.package-archive"

func init() {
	// APK bodies are opaque bytes to the validator.
	openapi3filter.RegisterBodyDecoder(apkType, openapi3filter.FileBodyDecoder)
}

// oapi checks real answers of a running server against api/openapi.yaml and
// records which (operation, status, code) answers were seen.
type oapi struct {
	doc  *openapi3.T
	base string
	seen map[string]bool
}

// loadStrictSpec loads the document and closes every object schema
// (additionalProperties: false), so that a field the server sends but the
// document does not describe fails the test. The published document stays
// open: the contract allows added fields.
func loadStrictSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	closed := false
	visited := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || visited[ref.Value] {
			return
		}
		s := ref.Value
		visited[s] = true
		if len(s.Properties) > 0 {
			s.AdditionalProperties = openapi3.AdditionalProperties{Has: &closed}
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		for _, list := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf, s.AllOf} {
			for _, r := range list {
				walk(r)
			}
		}
	}
	for _, s := range doc.Components.Schemas {
		walk(s)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, r := range op.Responses.Map() {
				for _, mt := range r.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
	return doc
}

// key names one answer in the coverage list.
func key(opID string, status int, code string) string {
	if code == "" {
		return fmt.Sprintf("%s %d", opID, status)
	}
	return fmt.Sprintf("%s %d %s", opID, status, code)
}

// exampleCodes lists the error codes a response documents (its examples).
func exampleCodes(r *openapi3.Response) []string {
	var codes []string
	if mt := r.Content.Get("application/json"); mt != nil {
		for _, ex := range mt.Examples {
			if m, ok := ex.Value.Value.(map[string]any); ok {
				if c, ok := m["code"].(string); ok {
					codes = append(codes, c)
				}
			}
		}
	}
	sort.Strings(codes)
	return codes
}

// call makes one request to the operation method+template (path parameters
// from params) and checks the answer against the document: the status is
// declared, the headers it declares required are there and valid, the body
// matches the schema, and an error code is one the response documents.
func (o *oapi) call(t *testing.T, method, template string, params map[string]string, query string, body []byte, headers ...string) response {
	t.Helper()
	item := o.doc.Paths.Value(template)
	if item == nil {
		t.Fatalf("openapi.yaml has no path %s", template)
	}
	op := item.GetOperation(method)
	if op == nil {
		t.Fatalf("openapi.yaml has no %s %s", method, template)
	}
	path := template
	for k, v := range params {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
	}
	target := o.base + path
	if query != "" {
		target += "?" + query
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, template, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: %v", method, template, err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: data}
	shown := data
	if len(shown) > 300 {
		shown = shown[:300]
	}
	where := fmt.Sprintf("%s %s -> %d %s", method, template, r.status, shown)

	declared := op.Responses.Status(r.status)
	if declared == nil {
		t.Fatalf("%s: status not declared in openapi.yaml", where)
	}
	for name, h := range declared.Value.Headers {
		if h.Value.Required && r.header.Get(name) == "" {
			t.Fatalf("%s: required header %s missing", where, name)
		}
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      &routers.Route{Spec: o.doc, Path: template, PathItem: item, Method: method, Operation: op},
		},
		Status:  r.status,
		Header:  r.header,
		Body:    io.NopCloser(bytes.NewReader(data)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	// A request the server accepted must be one the document allows.
	if r.status < 300 {
		again, err := http.NewRequest(method, target, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		again.Header = req.Header.Clone()
		if body == nil {
			again.Body = http.NoBody
		}
		if err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
			Request: again, PathParams: params, Route: input.RequestValidationInput.Route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
		}); err != nil {
			t.Fatalf("%s: the server accepted a request openapi.yaml does not allow: %v", where, err)
		}
	}
	code := ""
	if strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("%s: Content-Type %q", where, ct)
		}
		var m map[string]any
		if json.Unmarshal(data, &m) == nil {
			code, _ = m["code"].(string)
		}
	}
	if codes := exampleCodes(declared.Value); code != "" && len(codes) > 0 && !slices.Contains(codes, code) {
		t.Fatalf("%s: code %q is not among the documented %v", where, code, codes)
	}
	o.seen[key(op.OperationID, r.status, code)] = true
	return r
}

// notExercised are answers the document declares that a healthy server
// cannot be made to give on demand: internal errors, dependencies timing
// out, and a retry racing its first request.
func notExercised(opID string, status int, code string) bool {
	switch {
	case status == 500, status == 503:
		return true
	case opID == "queueMessages" && code == "idempotency_in_progress":
		return true
	}
	return false
}

func TestOpenAPIConformance(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		p := allInOne(t, b, map[string]string{
			"APITOSMS_INGRESS_MAX_BATCH":      "10",
			"APITOSMS_INGRESS_MAX_BODY_BYTES": "4096",
			"APITOSMS_RELEASES_MAX_APK_BYTES": "4096",
			"APITOSMS_READ_RATE_LIMIT":        strconv.Itoa(readWindow),
			"APITOSMS_WEBHOOK_ALLOW_PRIVATE":  "true",
			"APITOSMS_WEBHOOK_MAX_ENDPOINTS":  "2",
			"APITOSMS_STORES_MAX":             "2",
		})
		o := &oapi{doc: loadStrictSpec(t), base: p.base, seen: map[string]bool{}}
		bearer := []string{"Authorization", "Bearer " + adminToken}
		js := func(v any) []byte {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}

		// Operations.
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			o.call(t, "GET", path, nil, "", nil)
		}
		r := o.call(t, "GET", "/openapi.yaml", nil, "", nil)
		if !bytes.Equal(r.body, api.OpenAPI()) {
			t.Fatal("GET /openapi.yaml is not the embedded document")
		}
		if r := o.call(t, "GET", "/openapi.yaml", nil, "", nil, "If-None-Match", r.header.Get("ETag")); r.status != 304 {
			t.Fatalf("If-None-Match: %d", r.status)
		}

		// Every operator operation refuses a missing or wrong bearer token.
		for template, item := range o.doc.Paths.Map() {
			for method, op := range item.Operations() {
				if op.Security == nil || len(*op.Security) == 0 {
					continue
				}
				params := map[string]string{"id": "1", "versionCode": "1"}
				if r := o.call(t, method, template, params, "", nil, "Authorization", "Bearer wrong"); r.status != 401 {
					t.Fatalf("%s %s with a wrong bearer: %d", method, template, r.status)
				}
			}
		}
		// Every token operation refuses an unknown token.
		unknown := map[string]string{"token": strings.Repeat("a", 64), "hash": "0123456789abcdef", "id": "wh_" + strings.Repeat("0", 32)}
		for _, op := range tokenOps(o.doc) {
			var body []byte
			if op[0] == "POST" || op[0] == "PATCH" {
				body = []byte(`[]`)
			}
			if r := o.call(t, op[0], op[1], unknown, "", body); r.status != 401 {
				t.Fatalf("%s %s with an unknown token: %d", op[0], op[1], r.status)
			}
		}

		// Accounts and subscriptions.
		accounts := "/admin/v1/accounts"
		o.call(t, "POST", accounts, nil, "", []byte(`{nope`), bearer...)
		o.call(t, "POST", accounts, nil, "", js(map[string]string{"name": "Shop", "email": "no-at-sign"}), bearer...)
		r = o.call(t, "POST", accounts, nil, "", js(map[string]string{"name": "Shop", "email": "shop@example.com"}), bearer...)
		acc := r.json(t)
		id := strconv.FormatInt(int64(acc["id"].(float64)), 10)
		tok := acc["apiToken"].(string)
		one := map[string]string{"id": id}
		missing := map[string]string{"id": "999999999"}
		o.call(t, "GET", accounts+"/{id}", one, "", nil, bearer...)
		o.call(t, "GET", accounts+"/{id}", missing, "", nil, bearer...)
		o.call(t, "GET", accounts, nil, "query=Shop&limit=1", nil, bearer...)
		o.call(t, "GET", accounts, nil, "limit=0", nil, bearer...)
		o.call(t, "GET", accounts, nil, "cursor=nope", nil, bearer...)
		sub := accounts + "/{id}/subscription"
		o.call(t, "DELETE", sub, one, "", nil, bearer...) // no subscription yet
		o.call(t, "DELETE", sub, missing, "", nil, bearer...)
		// Token endpoints without a subscription.
		tp := map[string]string{"token": tok}
		o.call(t, "POST", "/api/{token}/queue", tp, "", js(items("x", 1)))
		o.call(t, "PUT", sub, one, "", []byte(`[1]`), bearer...)
		o.call(t, "PUT", sub, one, "", js(map[string]any{"plan": "test", "monthlyLimit": -1}), bearer...)
		o.call(t, "PUT", sub, missing, "", js(map[string]any{"plan": "test", "monthlyLimit": 1}), bearer...)
		o.call(t, "PUT", sub, one, "", js(map[string]any{"plan": "test", "monthlyLimit": 12, "rateLimitPerMinute": 1000}), bearer...)
		o.call(t, "GET", accounts+"/{id}", one, "", nil, bearer...)
		o.call(t, "POST", accounts+"/{id}/rotate-token", missing, "", nil, bearer...)
		o.call(t, "POST", accounts+"/{id}/invite", missing, "", nil, bearer...)
		if r := o.call(t, "POST", accounts+"/{id}/invite", one, "", nil, bearer...); !strings.Contains(r.json(t)["inviteUrl"].(string), "/console/invite/") {
			t.Fatalf("invite: %s", r.body)
		}
		tok = o.call(t, "POST", accounts+"/{id}/rotate-token", one, "", nil, bearer...).json(t)["apiToken"].(string)
		tp = map[string]string{"token": tok}

		// queue.
		q := "/api/{token}/queue"
		r = o.call(t, "POST", q, tp, "", []byte(`[{"phone":"+1 (234) 567-890","message":"first"},{"phone":"12","message":"bad"},{"phone":"0712345678","text":"second"}]`),
			"Idempotency-Key", "order-1")
		if r.status != 200 {
			t.Fatalf("queue: %d %s", r.status, r.body)
		}
		r = o.call(t, "POST", q, tp, "", []byte(`[{"phone":"+1 (234) 567-890","message":"first"}]`), "Idempotency-Key", "order-1")
		if r.status != 200 || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %v", r.status, r.header)
		}
		o.call(t, "POST", q, tp, "", js(items("k", 1)), "Idempotency-Key", strings.Repeat("k", 256))
		o.call(t, "POST", q, tp, "", []byte(`{nope`))
		o.call(t, "POST", q, tp, "", []byte(`[]`))
		o.call(t, "POST", q, tp, "", js(items("big", 11)))
		o.call(t, "POST", q, tp, "", js([]map[string]string{{"phone": "+15550000000", "message": strings.Repeat("x", 5000)}}))
		o.call(t, "POST", q, tp, "", []byte(`{"phone":"123","message":"x"}`))
		if r := o.call(t, "POST", q, tp, "", js(items("fill", 10))); r.status != 200 || r.json(t)["failed"] != 0.0 {
			t.Fatalf("fill: %d %s", r.status, r.body)
		}
		if r := o.call(t, "POST", q, tp, "", js(items("over", 1))); r.status != 402 {
			t.Fatalf("over quota: %d %s", r.status, r.body)
		}

		// get_messages.
		g := "/api/{token}/get_messages"
		o.call(t, "GET", g, tp, "limit=0", nil)
		o.call(t, "POST", g, tp, "limit=abc", nil)
		got := o.call(t, "GET", g, tp, "limit=2", nil).list(t)
		if len(got) != 2 {
			t.Fatalf("get_messages: %v", got)
		}
		o.call(t, "POST", g, tp, "", nil)

		// status.
		s := "/api/{token}/status"
		o.call(t, "POST", s, tp, "", []byte(`{nope`))
		o.call(t, "POST", s, tp, "", []byte(`{"messages":3}`))
		entries := make([]map[string]any, 11)
		for i := range entries {
			entries[i] = map[string]any{"hash": "0000000000000000", "status": 2}
		}
		o.call(t, "POST", s, tp, "", js(map[string]any{"messages": entries}))
		o.call(t, "POST", s, tp, "", js(map[string]any{"device": strings.Repeat("d", 5000), "messages": []any{}}))
		r = o.call(t, "POST", s, tp, "", js(map[string]any{"device": "MyPhone", "messages": []any{
			map[string]any{"hash": got[0]["hash"], "status": 2},
			map[string]any{"hash": "0000000000000000", "status": 3},
		}}))
		if m := r.json(t); r.status != 200 || m["updated"] != 1.0 {
			t.Fatalf("status: %d %s", r.status, r.body)
		}
		o.call(t, "DELETE", sub, one, "", nil, bearer...)

		// 429 on every token endpoint: a plan of one request a minute.
		r = o.call(t, "POST", accounts, nil, "", js(map[string]string{"name": "Slow", "email": "slow@example.com"}), bearer...)
		slow := r.json(t)
		slowID := map[string]string{"id": strconv.FormatInt(int64(slow["id"].(float64)), 10)}
		o.call(t, "PUT", sub, slowID, "", js(map[string]any{"plan": "slow", "monthlyLimit": 10, "rateLimitPerMinute": 1}), bearer...)
		sp := map[string]string{"token": slow["apiToken"].(string)}
		if r := o.call(t, "POST", q, sp, "", js(items("slow", 1))); r.status != 200 {
			t.Fatalf("first slow request: %d %s", r.status, r.body)
		}
		for _, op := range [][2]string{{"POST", q}, {"GET", g}, {"POST", g}, {"POST", s}} {
			r := o.call(t, op[0], op[1], sp, "", []byte(`{"messages":[]}`))
			if r.status != 429 || r.header.Get("Retry-After") == "" || r.header.Get("Retry-After") != fmt.Sprint(r.json(t)["retryAfter"]) {
				t.Fatalf("%s %s over the limit: %d %v %s", op[0], op[1], r.status, r.header, r.body)
			}
		}
		// Cancel counts in the send window too.
		if r := o.call(t, "DELETE", "/api/{token}/messages/{hash}", map[string]string{"token": sp["token"], "hash": "0123456789abcdef"}, "", nil); r.status != 429 || r.header.Get("X-RateLimit-Limit") != "1" {
			t.Fatalf("cancel over the send window: %d %v %s", r.status, r.header, r.body)
		}

		// Message tracking (§9) and webhooks (§10).
		trackingConformance(t, o, js)
		webhooksConformance(t, o, js)
		phonesConformance(t, o, js)
		settingsConformance(t, o, js)
		extrasConformance(t, o, js)
		storesConformance(t, o, js)
		readWindowConformance(t, o, js)

		// App versions.
		versions := "/admin/v1/app-versions"
		o.call(t, "GET", "/api/app-version", nil, "", nil)
		o.call(t, "GET", "/api/app-versions", nil, "", nil)
		o.call(t, "GET", "/download/app.apk", nil, "", nil)
		o.call(t, "HEAD", "/download/app.apk", nil, "", nil)
		apk := append([]byte("PK\x03\x04"), bytes.Repeat([]byte("apk"), 500)...)
		upload := func(code string, file []byte) response {
			var buf bytes.Buffer
			w := multipart.NewWriter(&buf)
			_ = w.WriteField("version", "1.2.0")
			_ = w.WriteField("versionCode", code)
			_ = w.WriteField("releaseNotes", "- Bug fixes")
			fw, _ := w.CreateFormFile("file", "app.apk")
			_, _ = fw.Write(file)
			_ = w.Close()
			return o.call(t, "POST", versions, nil, "", buf.Bytes(), append([]string{"Content-Type", w.FormDataContentType()}, bearer...)...)
		}
		o.call(t, "POST", versions, nil, "", []byte(`{}`), bearer...)
		upload("7", []byte("not a zip"))
		upload("7", append([]byte("PK\x03\x04"), make([]byte, 5000)...))
		if r := upload("7", apk); r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		upload("7", apk)
		o.call(t, "GET", versions, nil, "", nil, bearer...)
		vc := map[string]string{"versionCode": "7"}
		none := map[string]string{"versionCode": "999"}
		o.call(t, "POST", versions+"/{versionCode}/activate", none, "", nil, bearer...)
		o.call(t, "POST", versions+"/{versionCode}/activate", vc, "", nil, bearer...)
		o.call(t, "GET", "/api/app-version", nil, "", nil)
		o.call(t, "GET", "/api/app-versions", nil, "", nil)
		for _, dl := range []struct {
			template string
			params   map[string]string
		}{{"/download/app.apk", nil}, {"/api/download/{versionCode}", vc}} {
			full := o.call(t, "GET", dl.template, dl.params, "", nil)
			if !bytes.Equal(full.body, apk) {
				t.Fatalf("%s: body differs", dl.template)
			}
			o.call(t, "GET", dl.template, dl.params, "", nil, "Range", "bytes=10-")
			o.call(t, "GET", dl.template, dl.params, "", nil, "If-None-Match", full.header.Get("ETag"))
			o.call(t, "GET", dl.template, dl.params, "", nil, "Range", "bytes=99999-")
			o.call(t, "HEAD", dl.template, dl.params, "", nil)
			o.call(t, "HEAD", dl.template, dl.params, "", nil, "If-None-Match", full.header.Get("ETag"))
		}
		o.call(t, "GET", "/api/download/{versionCode}", none, "", nil)
		o.call(t, "HEAD", "/api/download/{versionCode}", none, "", nil)
		o.call(t, "DELETE", versions+"/{versionCode}", none, "", nil, bearer...)
		o.call(t, "DELETE", versions+"/{versionCode}", vc, "", nil, bearer...)

		// Every answer the document declares was given and checked.
		var missed []string
		for template, item := range o.doc.Paths.Map() {
			for method, op := range item.Operations() {
				for status, resp := range op.Responses.Map() {
					n, err := strconv.Atoi(status)
					if err != nil {
						t.Fatalf("%s %s: response %q is not a status code", method, template, status)
					}
					codes := exampleCodes(resp.Value)
					if len(codes) == 0 {
						codes = []string{""}
					}
					for _, c := range codes {
						if !o.seen[key(op.OperationID, n, c)] && !notExercised(op.OperationID, n, c) {
							missed = append(missed, key(op.OperationID, n, c))
						}
					}
				}
			}
		}
		sort.Strings(missed)
		if len(missed) > 0 {
			t.Fatalf("declared answers never exercised:\n%s", strings.Join(missed, "\n"))
		}
	})
}

// Every route the process serves is in openapi.yaml (the conformance test
// above shows the other direction): a new endpoint cannot ship undocumented.
func TestEveryRouteIsInOpenAPI(t *testing.T) {

	doc := loadStrictSpec(t)
	param := regexp.MustCompile(`\{[^}]+\}|:[^/]+`)
	inSpec := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inSpec[method+" "+param.ReplaceAllString(path, "{}")] = true
		}
	}
	routes := 0
	for _, r := range allRoutes(t) {
		path := strings.TrimSuffix(r.Path, "/")
		if r.Method == "HEAD" && inSpec["GET "+param.ReplaceAllString(path, "{}")] && !strings.Contains(path, "download") {
			continue // fiber answers HEAD on every GET route; documented where it matters (downloads)
		}
		if consolePage(path) {
			continue // the console's HTML pages: docs/console.md, not the API
		}
		routes++
		if op := r.Method + " " + param.ReplaceAllString(path, "{}"); !inSpec[op] {
			t.Errorf("the server serves %s %s, which api/openapi.yaml does not document", r.Method, r.Path)
		}
	}
	if routes < len(inSpec) {
		t.Fatalf("%d routes for %d documented operations", routes, len(inSpec))
	}
}

// readWindow is the read window of TestOpenAPIConformance's server: small
// enough that readWindowConformance can spend it, large enough for the
// reads of one account in the other parts.
const readWindow = 300

// tokenOps lists the document's token operations (path under /api/{token}/).
func tokenOps(doc *openapi3.T) [][2]string {
	var ops [][2]string
	for template, item := range doc.Paths.Map() {
		if !strings.HasPrefix(template, "/api/{token}/") {
			continue
		}
		for method := range item.Operations() {
			ops = append(ops, [2]string{method, template})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i][1]+ops[i][0] < ops[j][1]+ops[j][0] })
	return ops
}

// newAccount creates an account with a subscription through the operator
// API (checked against the document) and returns its token.
func newAccount(t *testing.T, o *oapi, js func(any) []byte, monthlyLimit, ratePerMinute int) string {
	t.Helper()
	bearer := []string{"Authorization", "Bearer " + adminToken}
	r := o.call(t, "POST", "/admin/v1/accounts", nil, "", js(map[string]string{"name": "Shop", "email": "shop@example.com"}), bearer...)
	acc := r.json(t)
	id := map[string]string{"id": strconv.FormatInt(int64(acc["id"].(float64)), 10)}
	o.call(t, "PUT", "/admin/v1/accounts/{id}/subscription", id, "",
		js(map[string]any{"plan": "test", "monthlyLimit": monthlyLimit, "rateLimitPerMinute": ratePerMinute}), bearer...)
	return acc["apiToken"].(string)
}

// trackingConformance drives every tracking operation (§9) through its
// declared answers.
func trackingConformance(t *testing.T, o *oapi, js func(any) []byte) { //nolint:thelper // a suite body: failures must point inside it
	tok := newAccount(t, o, js, 100, 1000)
	tp := map[string]string{"token": tok}
	r := o.call(t, "POST", "/api/{token}/queue", tp, "", []byte(`[{"phone":"+15550000001","message":"first"},{"phone":"+15550000002","message":"=2+2, \"quoted\""},{"phone":"+15550000003","message":"third"}]`))
	var hashes []string
	for _, it := range r.json(t)["items"].([]any) {
		hashes = append(hashes, it.(map[string]any)["hash"].(string))
	}
	if len(hashes) != 3 {
		t.Fatalf("queue: %s", r.body)
	}
	// The first one handed out and reported sent: every field of the
	// message object is set.
	if got := o.call(t, "GET", "/api/{token}/get_messages", tp, "limit=1", nil).list(t); len(got) != 1 || got[0]["hash"] != hashes[0] {
		t.Fatalf("get_messages: %v", got)
	}
	o.call(t, "POST", "/api/{token}/status", tp, "", js(map[string]any{"device": "Pixel-7", "messages": []any{map[string]any{"hash": hashes[0], "status": 2}}}))

	one := "/api/{token}/messages/{hash}"
	m := o.call(t, "GET", one, map[string]string{"token": tok, "hash": hashes[0]}, "", nil).json(t)
	if m["statusName"] != "sent" || m["device"] != "Pixel-7" || m["finishedAt"] == nil || m["attempts"] != 1.0 {
		t.Fatalf("sent message: %v", m)
	}
	if m := o.call(t, "GET", one, map[string]string{"token": tok, "hash": hashes[1]}, "", nil).json(t); m["statusName"] != "new" || m["device"] != nil {
		t.Fatalf("new message: %v", m)
	}
	for _, h := range []string{"0123456789abcdef", "XYZ"} {
		if r := o.call(t, "GET", one, map[string]string{"token": tok, "hash": h}, "", nil); r.status != 404 {
			t.Fatalf("GET message %s: %d", h, r.status)
		}
	}

	lookup := "/api/{token}/messages/lookup"
	r = o.call(t, "POST", lookup, tp, "", js(map[string]any{"hashes": []string{hashes[1], "nope", hashes[0]}}))
	if l := r.json(t); r.status != 200 || len(l["messages"].([]any)) != 2 || fmt.Sprint(l["notFound"]) != "[nope]" {
		t.Fatalf("lookup: %d %s", r.status, r.body)
	}
	o.call(t, "POST", lookup, tp, "", []byte(`{nope`))
	o.call(t, "POST", lookup, tp, "", []byte(`{"hashes":"x"}`))
	o.call(t, "POST", lookup, tp, "", []byte(`{"hashes":[]}`))
	// 1001 hashes in less than the test's 4096-byte body limit.
	o.call(t, "POST", lookup, tp, "", js(map[string]any{"hashes": make([]string, 1001)}))
	o.call(t, "POST", lookup, tp, "", js(map[string]any{"hashes": []string{strings.Repeat("a", 5000)}}))

	history := "/api/{token}/messages"
	p1 := o.call(t, "GET", history, tp, "limit=2", nil).json(t)
	if len(p1["messages"].([]any)) != 2 || p1["nextCursor"] == nil {
		t.Fatalf("history page 1: %v", p1)
	}
	if p2 := o.call(t, "GET", history, tp, "limit=2&cursor="+p1["nextCursor"].(string), nil).json(t); len(p2["messages"].([]any)) != 1 || p2["nextCursor"] != nil {
		t.Fatalf("history page 2: %v", p2)
	}
	from := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05-07:00"))
	to := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05-07:00"))
	if h := o.call(t, "GET", history, tp, "status=sent&status=0&phone=%2B1+555+000+0001&from="+from+"&to="+to, nil).json(t); len(h["messages"].([]any)) != 1 {
		t.Fatalf("history filtered: %v", h)
	}
	r = o.call(t, "GET", history, tp, "", nil, "Accept", "text/csv")
	if lines := strings.Split(strings.TrimSpace(string(r.body)), "\n"); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
		r.header.Get("Content-Disposition") == "" || len(lines) != 4 || !strings.Contains(string(r.body), `"'=2+2, ""quoted"""`) {
		t.Fatalf("csv: %d %v %s", r.status, r.header, r.body)
	}
	for _, q := range []string{"limit=0", "cursor=nothex", "status=gone", "phone=12", "from=yesterday", "to=2026-13-01T00:00:00Z"} {
		if r := o.call(t, "GET", history, tp, q, nil); r.status != 400 {
			t.Fatalf("history ?%s: %d", q, r.status)
		}
	}

	// Cancel: the third is still new; the first was handed out.
	if m := o.call(t, "DELETE", one, map[string]string{"token": tok, "hash": hashes[2]}, "", nil).json(t); m["statusName"] != "cancelled" {
		t.Fatalf("cancel: %v", m)
	}
	for _, h := range []string{hashes[2], hashes[0]} {
		if r := o.call(t, "DELETE", one, map[string]string{"token": tok, "hash": h}, "", nil); r.status != 409 {
			t.Fatalf("cancel again: %d", r.status)
		}
	}
	if r := o.call(t, "DELETE", one, map[string]string{"token": tok, "hash": "0123456789abcdef"}, "", nil); r.status != 404 {
		t.Fatalf("cancel unknown: %d", r.status)
	}
}

// webhooksConformance drives every webhook operation (§10) through its
// declared answers, with a real receiver: one path answers 204, another 500.
func webhooksConformance(t *testing.T, o *oapi, js func(any) []byte) { //nolint:thelper // a suite body: failures must point inside it
	posts := make(chan string, 100)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		} else {
			w.WriteHeader(http.StatusNoContent)
		}
		posts <- r.URL.Path
	}))
	t.Cleanup(rc.Close)
	tok := newAccount(t, o, js, 100, 60)
	tp := map[string]string{"token": tok}
	list, one := "/api/{token}/webhooks", "/api/{token}/webhooks/{id}"
	ref := func(id string) map[string]string { return map[string]string{"token": tok, "id": id} }
	missing := ref("wh_" + strings.Repeat("0", 32))

	// Bad bodies, on create and on PATCH.
	bad := [][]byte{[]byte(`{nope`), js(map[string]any{"url": "ftp://example.com/"}), js(map[string]any{"url": rc.URL, "events": []string{"sms.exploded"}}),
		js(map[string]any{"url": rc.URL, "batch": "yes"}), js(map[string]any{"url": rc.URL, "description": strings.Repeat("d", 5000)})}
	for _, body := range bad {
		if r := o.call(t, "POST", list, tp, "", body); r.status < 400 {
			t.Fatalf("create with %.40s: %d", body, r.status)
		}
	}
	r := o.call(t, "POST", list, tp, "", js(map[string]any{"url": rc.URL + "/ok", "events": []string{"webhook.test"}, "description": "shop"}))
	okHook := r.json(t)
	okID, secret := okHook["id"].(string), okHook["secret"].(string)
	if r.status != 201 || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	failID := o.call(t, "POST", list, tp, "", js(map[string]any{"url": rc.URL + "/fail", "batch": true})).json(t)["id"].(string)
	if r := o.call(t, "POST", list, tp, "", js(map[string]any{"url": rc.URL + "/third"})); r.status != 409 {
		t.Fatalf("third webhook with a maximum of 2: %d %s", r.status, r.body)
	}
	for _, body := range bad {
		if r := o.call(t, "PATCH", one, ref(okID), "", body); r.status < 400 {
			t.Fatalf("PATCH with %.40s: %d", body, r.status)
		}
	}
	if r := o.call(t, "GET", list, tp, "", nil); r.status != 200 || strings.Contains(string(r.body), "whsec_") || len(r.json(t)["webhooks"].([]any)) != 2 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if r := o.call(t, "PATCH", one, ref(okID), "", js(map[string]any{"description": "shop 2", "events": []string{"webhook.test", "message.sent"}})); r.json(t)["description"] != "shop 2" {
		t.Fatalf("PATCH: %s", r.body)
	}

	// Deliveries: two delivered to /ok, one failed to /fail.
	for range 2 {
		o.call(t, "POST", one+"/test", ref(okID), "", nil)
	}
	o.call(t, "POST", one+"/test", ref(failID), "", nil)
	got := map[string]int{}
	deadline := time.After(30 * time.Second)
	for got["/ok"] < 2 || got["/fail"] < 1 {
		select {
		case path := <-posts:
			got[path]++
		case <-deadline:
			t.Fatalf("deliveries received: %v", got)
		}
	}
	deliveries := one + "/deliveries"
	logOf := func(id string, query string, want int) map[string]any {
		t.Helper()
		// The log is written just after the receiver answers (after the
		// deliveries metric too): nothing to wait on but the log itself.
		// Poll it gently, since every poll counts in the read window.
		var page map[string]any
		testkit.EventuallyEvery(t, 10*time.Second, 100*time.Millisecond, fmt.Sprintf("%d deliveries logged (%s)", want, query), func() bool {
			page = o.call(t, "GET", deliveries, ref(id), query, nil).json(t)
			return len(page["deliveries"].([]any)) >= want
		})
		return page
	}
	// Both deliveries to /ok are logged before paging them one at a time
	// (the log is written after the receiver answered).
	if all := logOf(okID, "", 2); len(all["deliveries"].([]any)) < 2 {
		t.Fatalf("deliveries logged: %v", all)
	}
	p1 := logOf(okID, "limit=1", 1)
	if p1["nextCursor"] == nil {
		t.Fatalf("deliveries page 1: %v", p1)
	}
	if p2 := logOf(okID, "limit=1&cursor="+p1["nextCursor"].(string), 1); p2["deliveries"].([]any)[0].(map[string]any)["status"] != "delivered" {
		t.Fatalf("deliveries page 2: %v", p2)
	}
	if d := logOf(failID, "", 1)["deliveries"].([]any)[0].(map[string]any); d["status"] != "failed" || d["responseStatus"] != 500.0 || d["error"] == nil {
		t.Fatalf("failed delivery: %v", d)
	}
	for _, q := range []string{"limit=0", "cursor=%21%21"} {
		if r := o.call(t, "GET", deliveries, ref(okID), q, nil); r.status != 400 {
			t.Fatalf("deliveries ?%s: %d", q, r.status)
		}
	}

	// A disabled endpoint cannot be tested.
	if r := o.call(t, "PATCH", one, ref(failID), "", js(map[string]any{"enabled": false})); r.json(t)["enabled"] != false {
		t.Fatalf("disable: %s", r.body)
	}
	if r := o.call(t, "POST", one+"/test", ref(failID), "", nil); r.status != 409 {
		t.Fatalf("test a disabled webhook: %d", r.status)
	}
	if r := o.call(t, "POST", one+"/rotate-secret", ref(okID), "", nil); r.json(t)["secret"] == secret {
		t.Fatal("rotate-secret answered the old secret")
	}
	o.call(t, "GET", one, ref(okID), "", nil)
	o.call(t, "DELETE", one, ref(failID), "", nil)

	// An unknown endpoint, on every operation that names one.
	for _, op := range [][2]string{{"GET", one}, {"PATCH", one}, {"DELETE", one}, {"POST", one + "/rotate-secret"},
		{"POST", one + "/test"}, {"GET", deliveries}} {
		var body []byte
		if op[0] == "PATCH" {
			body = js(map[string]any{"description": "x"})
		}
		for _, p := range []map[string]string{missing, ref(failID)} {
			if r := o.call(t, op[0], op[1], p, "", body); r.status != 404 {
				t.Fatalf("%s %s unknown: %d", op[0], op[1], r.status)
			}
		}
	}
}

// readWindowConformance spends a token's read window, then every operation
// counted in it answers 429 with the window's headers.
func readWindowConformance(t *testing.T, o *oapi, js func(any) []byte) { //nolint:thelper // a suite body: failures must point inside it
	tok := newAccount(t, o, js, 10, 60)
	for i := 0; i < readWindow; i++ {
		if r := do(t, "GET", o.base+"/api/"+tok+"/webhooks", nil); r.status != 200 {
			t.Fatalf("read %d: %d %s", i, r.status, r.body)
		}
	}
	params := map[string]string{"token": tok, "hash": "0123456789abcdef", "id": "wh_" + strings.Repeat("0", 32)}
	for _, op := range tokenOps(o.doc) {
		if op == [2]string{"DELETE", "/api/{token}/messages/{hash}"} || slices.Contains([]string{"queue", "get_messages", "status"}, op[1][len("/api/{token}/"):]) {
			continue // the send window
		}
		var body []byte
		if op[0] == "POST" || op[0] == "PATCH" {
			body = []byte(`{}`)
		}
		r := o.call(t, op[0], op[1], params, "", body)
		if r.status != 429 || r.header.Get("X-RateLimit-Limit") != strconv.Itoa(readWindow) || r.header.Get("X-RateLimit-Remaining") != "0" ||
			r.header.Get("Retry-After") != fmt.Sprint(r.json(t)["retryAfter"]) {
			t.Fatalf("%s %s over the read window: %d %v %s", op[0], op[1], r.status, r.header, r.body)
		}
	}
	// The send window is untouched.
	if r := o.call(t, "POST", "/api/{token}/queue", map[string]string{"token": tok}, "", js(items("r", 1))); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "60" {
		t.Fatalf("queue after the read window is spent: %d %v %s", r.status, r.header, r.body)
	}
}

// phonesConformance drives the phones list (§11) and get_messages' device
// parameter: no phone at first, then one phone named by a GET pull and a
// report, one by a POST pull, and a blank name that names none.
func phonesConformance(t *testing.T, o *oapi, js func(any) []byte) { //nolint:thelper // a suite body: failures must point inside it
	tok := newAccount(t, o, js, 100, 1000)
	tp := map[string]string{"token": tok}
	list, g := "/api/{token}/phones", "/api/{token}/get_messages"
	if r := o.call(t, "GET", list, tp, "", nil); r.status != 200 || string(r.body) != `{"phones":[]}` || r.header.Get("X-RateLimit-Limit") != strconv.Itoa(readWindow) {
		t.Fatalf("phones before any pull: %d %v %s", r.status, r.header, r.body)
	}
	o.call(t, "POST", "/api/{token}/queue", tp, "", js(items("ph", 2)))
	long := "Pixel-7 " + strings.Repeat("x", 20) // cut to 15 characters
	pulled := o.call(t, "GET", g, tp, "limit=1&device="+url.QueryEscape(long), nil).list(t)
	if len(pulled) != 1 {
		t.Fatalf("pull with a device: %v", pulled)
	}
	// A name that is empty once trimmed names no phone; it is sent before
	// Tablet's pull, so it reaches the queue no later than Tablet does.
	o.call(t, "GET", g, tp, "limit=1&device="+url.QueryEscape(" \t "), nil)
	o.call(t, "POST", g, tp, "limit=1&device=Tablet", nil)
	if r := o.call(t, "POST", "/api/{token}/status", tp, "", js(map[string]any{"device": long, "messages": []any{
		map[string]any{"hash": pulled[0]["hash"], "status": 2}}})); r.json(t)["updated"] != 1.0 {
		t.Fatalf("status: %s", r.body)
	}

	// Sightings reach the list within a flush interval (2 s); each poll
	// counts in the read window, so poll gently.
	var phones []any
	testkit.EventuallyEvery(t, 15*time.Second, 200*time.Millisecond, "both phones listed with the report", func() bool {
		phones = o.call(t, "GET", list, tp, "", nil).json(t)["phones"].([]any)
		if len(phones) < 2 {
			return false
		}
		first := phones[0].(map[string]any)
		return first["lastReportAt"] != nil && phones[len(phones)-1].(map[string]any)["device"] == "Tablet"
	})
	if len(phones) != 2 {
		t.Fatalf("phones: %v", phones)
	}
	pixel, tablet := phones[0].(map[string]any), phones[1].(map[string]any)
	if pixel["device"] != long[:15] || pixel["sentToday"] != 1.0 || pixel["failedToday"] != 0.0 || pixel["online"] != true ||
		pixel["lastPullAt"] == nil || pixel["lastSeenAt"] == nil {
		t.Fatalf("phone with a pull and a report: %v", pixel)
	}
	if tablet["lastReportAt"] != nil || tablet["sentToday"] != 0.0 || tablet["online"] != true || tablet["lastSeenAt"] != tablet["lastPullAt"] {
		t.Fatalf("phone with a pull only: %v", tablet)
	}
}

// settingsConformance drives the lease settings (§12) through their
// declared answers: the defaults, every refusal (nothing changed by it), a
// change, a partial change and an empty one.
func settingsConformance(t *testing.T, o *oapi, js func(any) []byte) { //nolint:thelper // a suite body: failures must point inside it
	tok := newAccount(t, o, js, 100, 1000)
	tp := map[string]string{"token": tok}
	path := "/api/{token}/settings"
	if r := o.call(t, "GET", path, tp, "", nil); r.status != 200 || string(r.body) != `{"leaseSeconds":0,"onLeaseExpiry":"requeue","maxAttempts":3}` ||
		r.header.Get("X-RateLimit-Limit") != strconv.Itoa(readWindow) {
		t.Fatalf("settings before any change: %d %v %s", r.status, r.header, r.body)
	}
	for _, c := range []struct{ body, code, sentence string }{
		{`{nope`, "invalid_json", "Invalid JSON body"},
		{`[{"leaseSeconds":300}]`, "invalid_json", "Invalid JSON body"},
		{`300`, "invalid_json", "Invalid JSON body"},
		{`{"leaseSeconds":30}`, "invalid_settings", "Invalid leaseSeconds (0, or 60-86400)"},
		{`{"leaseSeconds":86401}`, "invalid_settings", "Invalid leaseSeconds (0, or 60-86400)"},
		{`{"leaseSeconds":"300"}`, "invalid_settings", "Invalid leaseSeconds (0, or 60-86400)"},
		{`{"leaseSeconds":300,"onLeaseExpiry":"drop"}`, "invalid_settings", `Invalid onLeaseExpiry ("requeue" or "expire")`},
		{`{"onLeaseExpiry":1}`, "invalid_settings", `Invalid onLeaseExpiry ("requeue" or "expire")`},
		{`{"maxAttempts":0}`, "invalid_settings", "Invalid maxAttempts (1-100)"},
		{`{"maxAttempts":101}`, "invalid_settings", "Invalid maxAttempts (1-100)"},
	} {
		r := o.call(t, "PATCH", path, tp, "", []byte(c.body))
		if m := r.json(t); r.status != 400 || m["code"] != c.code || m["error"] != c.sentence {
			t.Fatalf("PATCH %s: %d %s", c.body, r.status, r.body)
		}
	}
	if r := o.call(t, "PATCH", path, tp, "", js(map[string]string{"pad": strings.Repeat("x", 5000)})); r.status != 413 {
		t.Fatalf("PATCH over the body limit: %d %s", r.status, r.body)
	}
	if r := o.call(t, "GET", path, tp, "", nil); string(r.body) != `{"leaseSeconds":0,"onLeaseExpiry":"requeue","maxAttempts":3}` {
		t.Fatalf("settings after refused changes: %s", r.body)
	}
	want := `{"leaseSeconds":300,"onLeaseExpiry":"expire","maxAttempts":5}`
	if r := o.call(t, "PATCH", path, tp, "", []byte(`{"leaseSeconds":300,"onLeaseExpiry":"expire","maxAttempts":5}`)); r.status != 200 || string(r.body) != want {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	if r := o.call(t, "PATCH", path, tp, "", []byte(`{}`)); r.status != 200 || string(r.body) != want {
		t.Fatalf("PATCH {}: %d %s", r.status, r.body)
	}
	want = `{"leaseSeconds":300,"onLeaseExpiry":"requeue","maxAttempts":5}`
	if r := o.call(t, "PATCH", path, tp, "", []byte(`{"leaseSeconds":null,"onLeaseExpiry":"requeue"}`)); r.status != 200 || string(r.body) != want {
		t.Fatalf("PATCH with null: %d %s", r.status, r.body)
	}
	// Unknown fields are ignored (the strict copy of the document closes
	// the request schema, so this one goes around it).
	if r := do(t, "PATCH", o.base+"/api/"+tok+"/settings", map[string]any{"leaseSeconds": 0, "colour": "blue"}); r.status != 200 ||
		string(r.body) != `{"leaseSeconds":0,"onLeaseExpiry":"requeue","maxAttempts":5}` {
		t.Fatalf("PATCH with an unknown field: %d %s", r.status, r.body)
	}
	if r := o.call(t, "GET", path, tp, "", nil); string(r.body) != `{"leaseSeconds":0,"onLeaseExpiry":"requeue","maxAttempts":5}` {
		t.Fatalf("settings as stored: %s", r.body)
	}
}

// extrasConformance queues items with the optional fields of §12 and reads
// them back as message objects (one by one, in bulk and in history), so
// that the queue item schema, the item errors and the message object's
// added fields are checked against the document.
func extrasConformance(t *testing.T, o *oapi, js func(any) []byte) { //nolint:thelper // a suite body: failures must point inside it
	tok := newAccount(t, o, js, 100, 1000)
	tp := map[string]string{"token": tok}
	q := "/api/{token}/queue"
	now := time.Now().UTC()
	later := now.Add(time.Hour).Truncate(time.Second)
	r := o.call(t, "POST", q, tp, "", js([]map[string]any{
		{"phone": "+15550000001", "message": "scheduled", "sendAt": later.Format(time.RFC3339), "ttl": 7200},
		{"phone": "+15550000002", "message": "urgent", "priority": "high", "validUntil": later.Format(time.RFC3339)},
		{"phone": "+15550000003", "message": "plain", "sendAt": nil, "ttl": nil, "validUntil": nil, "priority": nil},
		{"phone": "+15550000004", "message": "normal", "priority": "normal"},
	}))
	res := r.json(t)
	if r.status != 200 || res["queued"] != 4.0 {
		t.Fatalf("queue with extras: %d %s", r.status, r.body)
	}
	var hashes []string
	for _, it := range res["items"].([]any) {
		hashes = append(hashes, it.(map[string]any)["hash"].(string))
	}
	// Every §12 item error, in one request where no item is valid.
	r = o.call(t, "POST", q, tp, "", js([]map[string]any{
		{"phone": "+15550000005", "message": "x", "sendAt": "tomorrow"},
		{"phone": "+15550000005", "message": "x", "sendAt": now.Add(31 * 24 * time.Hour).Format(time.RFC3339)},
		{"phone": "+15550000005", "message": "x", "ttl": 59},
		{"phone": "+15550000005", "message": "x", "ttl": 3600, "validUntil": later.Format(time.RFC3339)},
		{"phone": "+15550000005", "message": "x", "validUntil": now.Add(-time.Hour).Format(time.RFC3339)},
		{"phone": "+15550000005", "message": "x", "priority": "HIGH"},
	}))
	wantErrs := []string{"Invalid sendAt", "Invalid sendAt", "Invalid ttl", "Invalid ttl", "Invalid validUntil", "Invalid priority"}
	errs, _ := r.json(t)["errors"].([]any)
	if r.status != 422 || len(errs) != len(wantErrs) {
		t.Fatalf("invalid extras: %d %s", r.status, r.body)
	}
	for i, e := range errs {
		if m := e.(map[string]any); m["index"] != float64(i) || m["error"] != wantErrs[i] {
			t.Fatalf("item %d: %v, want %q", i, m, wantErrs[i])
		}
	}

	one := "/api/{token}/messages/{hash}"
	get := func(i int) map[string]any {
		return o.call(t, "GET", one, map[string]string{"token": tok, "hash": hashes[i]}, "", nil).json(t)
	}
	stamp := func(v any) time.Time {
		ts, err := time.Parse(time.RFC3339, fmt.Sprint(v))
		if err != nil {
			t.Fatalf("timestamp %v: %v", v, err)
		}
		return ts
	}
	if m := get(0); !stamp(m["sendAt"]).Equal(later) || m["priority"] != "normal" || stamp(m["validUntil"]).Before(later) || m["status"] != 0.0 {
		t.Fatalf("scheduled message: %v", m)
	}
	if m := get(1); m["sendAt"] != nil || !stamp(m["validUntil"]).Equal(later) || m["priority"] != "high" {
		t.Fatalf("urgent message: %v", m)
	}
	for _, i := range []int{2, 3} {
		if m := get(i); m["sendAt"] != nil || m["validUntil"] != nil || m["priority"] != nil {
			t.Fatalf("message %d without extras: %v", i, m)
		}
	}
	o.call(t, "POST", "/api/{token}/messages/lookup", tp, "", js(map[string]any{"hashes": hashes}))
	o.call(t, "GET", "/api/{token}/messages", tp, "", nil)

	// Hand-out: the high one first, then FIFO; the scheduled one not yet.
	got := o.call(t, "GET", "/api/{token}/get_messages", tp, "limit=10", nil).list(t)
	if len(got) != 3 || got[0]["hash"] != hashes[1] || got[1]["hash"] != hashes[2] || got[2]["hash"] != hashes[3] {
		t.Fatalf("hand-out order: %v (queued %v)", got, hashes)
	}
}

// consolePage reports a route of the web console's HTML pages (and the "/"
// redirect to them): pages for browsers, documented in docs/console.md, not
// API operations.
func consolePage(path string) bool {
	return path == "" || path == "/" || path == "/console" || strings.HasPrefix(path, "/console/")
}
