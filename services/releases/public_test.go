package releases_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

// keys returns the top-level keys of a JSON object in document order.
func keys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var out []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

var publishedAtRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`)

func TestPublicJSON(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := start(t, b, testConfig()) // PUBLIC_URL with a trailing slash

		resp, raw := r.raw("GET", "/api/app-version", nil, nil)
		if resp.StatusCode != http.StatusNotFound || string(raw) != `{"code":"no_active_version","error":"No active version available"}` &&
			string(raw) != `{"error":"No active version available","code":"no_active_version"}` {
			t.Errorf("no active: %d %s", resp.StatusCode, raw)
		}
		resp, raw = r.raw("GET", "/api/app-versions", nil, nil)
		if resp.StatusCode != http.StatusOK || string(raw) != `{"versions":[]}` {
			t.Errorf("empty list: %d %s", resp.StatusCode, raw)
		}

		files := map[int64][]byte{3: apk(1000, 3), 10: apk(3000, 10), 5: apk(2000, 5)}
		for _, code := range []int64{3, 10, 5} {
			r.mustUpload(fmt.Sprintf("1.%d.0", code), code, files[code])
		}
		if st, body := r.do("POST", "/admin/v1/app-versions/5/activate", nil, nil); st != http.StatusOK {
			t.Fatalf("activate: %d %v", st, body)
		}

		resp, raw = r.raw("GET", "/api/app-version", nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("app-version: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
		}
		wantKeys := fmt.Sprint([]string{"version", "versionCode", "downloadUrl", "releaseNotes", "fileSize", "publishedAt", "sha256"})
		if got := fmt.Sprint(keys(t, raw)); got != wantKeys {
			t.Errorf("app-version keys %s, want %s", got, wantKeys)
		}
		var active map[string]any
		_ = json.Unmarshal(raw, &active)
		for k, w := range map[string]any{
			"version": "1.5.0", "versionCode": 5.0, "downloadUrl": "https://apitosms.example/download/app.apk",
			"releaseNotes": "notes 1.5.0", "fileSize": 2000.0, "sha256": sha(files[5]),
		} {
			if active[k] != w {
				t.Errorf("app-version %s = %v, want %v", k, active[k], w)
			}
		}
		if !publishedAtRe.MatchString(fmt.Sprint(active["publishedAt"])) {
			t.Errorf("publishedAt %v not in the contract's layout", active["publishedAt"])
		}

		resp, raw = r.raw("GET", "/api/app-versions", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("app-versions: %d %s", resp.StatusCode, raw)
		}
		var list struct{ Versions []json.RawMessage }
		if err := json.Unmarshal(raw, &list); err != nil {
			t.Fatal(err)
		}
		wantItemKeys := fmt.Sprint([]string{"version", "versionCode", "isActive", "downloadUrl", "releaseNotes", "fileSize", "publishedAt", "sha256"})
		var codes []int64
		for _, item := range list.Versions {
			if got := fmt.Sprint(keys(t, item)); got != wantItemKeys {
				t.Errorf("item keys %s, want %s", got, wantItemKeys)
			}
			var v map[string]any
			_ = json.Unmarshal(item, &v)
			code := int64(v["versionCode"].(float64))
			codes = append(codes, code)
			if v["isActive"] != (code == 5) || v["downloadUrl"] != "https://apitosms.example/api/download/"+strconv.FormatInt(code, 10) ||
				v["sha256"] != sha(files[code]) || v["fileSize"] != float64(len(files[code])) || !publishedAtRe.MatchString(fmt.Sprint(v["publishedAt"])) {
				t.Errorf("item %s", item)
			}
		}
		if fmt.Sprint(codes) != "[10 5 3]" {
			t.Errorf("order %v, want versionCode descending [10 5 3]", codes)
		}
	})
}

func TestDownloads(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := start(t, b, testConfig())
		file := apk(300<<10+7, 7)
		size := len(file)
		etag := `"` + sha(file) + `"`
		r.mustUpload("1.2.0", 5, file)
		r.mustUpload("1.1.0", 4, apk(1000, 4))

		st, body := r.do("GET", "/download/app.apk", nil, nil)
		wantError(t, "no active", st, body, http.StatusNotFound, "no_active_version", "No active version available")
		if st, body := r.do("POST", "/admin/v1/app-versions/5/activate", nil, nil); st != http.StatusOK {
			t.Fatalf("activate: %d %v", st, body)
		}

		counted := 0
		for _, path := range []string{"/download/app.apk", "/api/download/5"} {
			resp, got := r.raw("GET", path, nil, nil)
			counted++
			h := resp.Header
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, file) ||
				h.Get("Content-Type") != "application/vnd.android.package-archive" ||
				h.Get("Content-Disposition") != `attachment; filename="app-v1.2.0.apk"` ||
				h.Get("Content-Length") != strconv.Itoa(size) || h.Get("ETag") != etag || h.Get("Accept-Ranges") != "bytes" {
				t.Errorf("GET %s: %d, %d bytes (sha ok %v), headers %v", path, resp.StatusCode, len(got), bytes.Equal(got, file), h)
			}
			resp, got = r.raw("HEAD", path, nil, nil)
			if resp.StatusCode != http.StatusOK || len(got) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(size) ||
				resp.Header.Get("ETag") != etag || resp.Header.Get("Accept-Ranges") != "bytes" {
				t.Errorf("HEAD %s: %d %d bytes, headers %v", path, resp.StatusCode, len(got), resp.Header)
			}
			for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
				resp, got = r.raw("GET", path, nil, map[string]string{"If-None-Match": inm})
				if resp.StatusCode != http.StatusNotModified || len(got) != 0 || resp.Header.Get("ETag") != etag {
					t.Errorf("If-None-Match %s: %d, %d bytes", inm, resp.StatusCode, len(got))
				}
			}
			resp, _ = r.raw("GET", path, nil, map[string]string{"If-None-Match": `"stale"`})
			counted++
			if resp.StatusCode != http.StatusOK {
				t.Errorf("stale If-None-Match: %d", resp.StatusCode)
			}
		}

		// Ranges.
		ranges := []struct {
			header    string
			from, to  int // inclusive
			startsAt0 bool
		}{
			{"bytes=0-99", 0, 99, true},
			{"bytes=100-", 100, size - 1, false},
			{"bytes=-50", size - 50, size - 1, false},
			{"bytes=1000-1999", 1000, 1999, false},
			{fmt.Sprintf("bytes=%d-%d", size-10, size+100), size - 10, size - 1, false},
		}
		for _, rg := range ranges {
			resp, got := r.raw("GET", "/api/download/5", nil, map[string]string{"Range": rg.header})
			if rg.startsAt0 {
				counted++
			}
			wantCR := fmt.Sprintf("bytes %d-%d/%d", rg.from, rg.to, size)
			if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantCR ||
				resp.Header.Get("Content-Length") != strconv.Itoa(rg.to-rg.from+1) || !bytes.Equal(got, file[rg.from:rg.to+1]) {
				t.Errorf("Range %s: %d %q, %d bytes", rg.header, resp.StatusCode, resp.Header.Get("Content-Range"), len(got))
			}
		}
		for _, bad := range []string{fmt.Sprintf("bytes=%d-", size), "bytes=-0"} {
			resp, _ := r.raw("GET", "/api/download/5", nil, map[string]string{"Range": bad})
			if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", size) {
				t.Errorf("Range %s: %d %q", bad, resp.StatusCode, resp.Header.Get("Content-Range"))
			}
		}
		// If-Range with another validator: the whole file, counted.
		resp, got := r.raw("GET", "/api/download/5", nil, map[string]string{"Range": "bytes=100-", "If-Range": `"old"`})
		counted++
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, file) {
			t.Errorf("If-Range mismatch: %d, %d bytes", resp.StatusCode, len(got))
		}

		// A download resumed with Range reassembles to the same SHA-256.
		half := size / 2
		resp1, part1 := r.raw("GET", "/download/app.apk", nil, map[string]string{"Range": fmt.Sprintf("bytes=0-%d", half-1)})
		counted++
		resp2, part2 := r.raw("GET", "/download/app.apk", nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", half), "If-Range": etag})
		if resp1.StatusCode != http.StatusPartialContent || resp2.StatusCode != http.StatusPartialContent ||
			sha(append(part1, part2...)) != sha(file) {
			t.Errorf("resumed download: %d+%d, %d+%d bytes, sha256 mismatch", resp1.StatusCode, resp2.StatusCode, len(part1), len(part2))
		}

		for _, path := range []string{"/api/download/99", "/api/download/abc", "/api/download/-1", "/api/download/0"} {
			st, body := r.do("GET", path, nil, nil)
			wantError(t, path, st, body, http.StatusNotFound, "version_not_found", "Version not found")
		}

		if got := r.downloads(5); got != int64(counted) {
			t.Errorf("downloads of 5 = %d, want %d", got, counted)
		}
		if got := r.downloads(4); got != 0 {
			t.Errorf("downloads of 4 = %d, want 0", got)
		}
		if got := r.metric("apitosms_releases_downloads_total", "kind", "full"); got != float64(counted) {
			t.Errorf("full downloads metric = %v, want %d", got, counted)
		}
		if got := r.metric("apitosms_releases_downloads_total", "kind", "not_modified"); got != 8 {
			t.Errorf("not_modified metric = %v, want 8", got)
		}
		if got := r.metric("apitosms_releases_downloads_total", "kind", "head"); got != 2 {
			t.Errorf("head metric = %v, want 2", got)
		}
	})
}

// TestDownloadCounterConcurrent: 200 concurrent full downloads split across
// two replicas (own broker connections and database handles, one namespace
// and database), mixed with Range continuations, HEADs and 304s, count
// exactly 200.
func TestDownloadCounterConcurrent(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		a := start(t, b, testConfig())
		c := start(t, b, testConfig())
		file := apk(64<<10, 9)
		etag := `"` + sha(file) + `"`
		a.mustUpload("3.0.0", 30, file)
		if st, body := c.do("POST", "/admin/v1/app-versions/30/activate", nil, nil); st != http.StatusOK {
			t.Fatalf("activate: %d %v", st, body)
		}
		const full = 200
		var wg sync.WaitGroup
		errs := make(chan string, 4*full)
		for i := range full {
			rep := a
			if i%2 == 1 {
				rep = c
			}
			path := "/download/app.apk"
			if i%4 >= 2 {
				path = "/api/download/30"
			}
			wg.Go(func() {
				if resp, got := rep.raw("GET", path, nil, nil); resp.StatusCode != 200 || !bytes.Equal(got, file) {
					errs <- fmt.Sprintf("GET %d, %d bytes", resp.StatusCode, len(got))
				}
			})
			wg.Go(func() { // not counted: a continuation, a HEAD, a 304
				var resp *http.Response
				switch i % 3 {
				case 0:
					resp, _ = rep.raw("GET", path, nil, map[string]string{"Range": "bytes=1000-"})
				case 1:
					resp, _ = rep.raw("HEAD", path, nil, nil)
				case 2:
					resp, _ = rep.raw("GET", path, nil, map[string]string{"If-None-Match": etag})
				}
				if resp.StatusCode >= 400 {
					errs <- fmt.Sprintf("uncounted request: %d", resp.StatusCode)
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		if got := a.downloads(30); got != full {
			t.Errorf("downloads seen by replica A = %d, want %d", got, full)
		}
		if got := c.downloads(30); got != full {
			t.Errorf("downloads seen by replica B = %d, want %d", got, full)
		}
		sum := a.metric("apitosms_releases_downloads_total", "kind", "full") + c.metric("apitosms_releases_downloads_total", "kind", "full")
		if sum != full {
			t.Errorf("full downloads metric over replicas = %v, want %d", sum, full)
		}
	})
}
