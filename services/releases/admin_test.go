package releases_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/testkit"
)

// objectCount is the number of APK objects in the namespace's bucket.
func objectCount(t *testing.T, b testkit.Backend) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obs, err := b.Broker(t).JS.ObjectStore(ctx, b.Names.ReleasesBucket())
	if err != nil {
		t.Fatalf("object store: %v", err)
	}
	list, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("list objects: %v", err)
	}
	return len(list)
}

func TestAdminAPI(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := start(t, b, testConfig())
		file := apk(100<<10, 1)

		// Authentication.
		for _, auth := range []string{"", "Bearer wrong", "Basic " + adminToken, adminToken} {
			st, body := r.do("GET", "/admin/v1/app-versions", nil, map[string]string{"Authorization": auth})
			wantError(t, "auth "+auth, st, body, http.StatusUnauthorized, "unauthorized", "")
		}
		if st, body := r.do("POST", "/admin/v1/app-versions/1/activate", nil, map[string]string{"Authorization": "Bearer nope"}); st != http.StatusUnauthorized {
			t.Errorf("activate without token: %d %v", st, body)
		}

		// Upload: 201, the version published but not active.
		before := time.Now().Add(-time.Second)
		st, v := r.upload("1.2.0", 5, "- Bug fixes\n- Performance improvements", file)
		if st != http.StatusCreated {
			t.Fatalf("upload: %d %v", st, v)
		}
		want := map[string]any{
			"version": "1.2.0", "versionCode": 5.0, "isActive": false,
			"downloadUrl": "https://apitosms.example/api/download/5", "releaseNotes": "- Bug fixes\n- Performance improvements",
			"fileSize": float64(len(file)), "sha256": sha(file), "downloads": 0.0,
		}
		for k, w := range want {
			if v[k] != w {
				t.Errorf("upload %s = %v, want %v", k, v[k], w)
			}
		}
		if p, err := time.Parse(time.RFC3339, fmt.Sprint(v["publishedAt"])); err != nil || p.Before(before) || p.After(time.Now().Add(time.Second)) {
			t.Errorf("publishedAt %v is not the upload time", v["publishedAt"])
		}

		// Refusals, none of which leaves an object behind.
		st, body := r.upload("1.2.1", 5, "", apk(1000, 2))
		if st != http.StatusConflict || body["error"] != "Version code already exists" || body["code"] != "version_exists" {
			t.Errorf("duplicate: %d %v", st, body)
		}
		st, body = r.upload("1.3.0", 6, "", []byte("not a zip file at all"))
		wantError(t, "not an apk", st, body, http.StatusBadRequest, "invalid_apk", "")
		st, body = r.upload("1.3.0", 6, "", []byte("PK"))
		wantError(t, "short file", st, body, http.StatusBadRequest, "invalid_apk", "")
		for _, code := range []string{"0", "-3", "abc", "1.5", ""} {
			rd, ct := multipartBody(t, map[string]string{"version": "1.3.0", "versionCode": code}, apk(1000, 3))
			st, body = r.do("POST", "/admin/v1/app-versions", rd, map[string]string{"Content-Type": ct})
			wantError(t, "versionCode "+code, st, body, http.StatusBadRequest, "invalid_body", "")
		}
		for _, version := range []string{"", "   ", strings.Repeat("1", 51)} {
			st, body = r.upload(version, 7, "", apk(1000, 4))
			wantError(t, "version "+version, st, body, http.StatusBadRequest, "invalid_body", "")
		}
		rd, ct := multipartBody(t, map[string]string{"version": "1.3.0", "versionCode": "8"}, nil)
		st, body = r.do("POST", "/admin/v1/app-versions", rd, map[string]string{"Content-Type": ct})
		wantError(t, "no file", st, body, http.StatusBadRequest, "invalid_body", "file is required")
		st, body = r.do("POST", "/admin/v1/app-versions", strings.NewReader(`{"version":"1"}`), map[string]string{"Content-Type": "application/json"})
		wantError(t, "json body", st, body, http.StatusBadRequest, "invalid_body", "")
		if n := objectCount(t, b); n != 1 {
			t.Errorf("objects after refusals = %d, want 1", n)
		}

		// Activate, list, unpublish.
		r.mustUpload("1.3.0", 6, apk(2000, 5))
		st, body = r.do("POST", "/admin/v1/app-versions/5/activate", nil, nil)
		if st != http.StatusOK || body["isActive"] != true || body["versionCode"] != 5.0 {
			t.Errorf("activate: %d %v", st, body)
		}
		for _, path := range []string{"/admin/v1/app-versions/99/activate", "/admin/v1/app-versions/x/activate"} {
			st, body = r.do("POST", path, nil, nil)
			wantError(t, path, st, body, http.StatusNotFound, "version_not_found", "Version not found")
		}
		vs := r.versions()
		if len(vs) != 2 || vs[5]["isActive"] != true || vs[6]["isActive"] != false || vs[6]["downloads"] != 0.0 {
			t.Errorf("list: %v", vs)
		}
		if st, body = r.do("DELETE", "/admin/v1/app-versions/5", nil, nil); st != http.StatusNoContent {
			t.Errorf("unpublish: %d %v", st, body)
		}
		st, body = r.do("DELETE", "/admin/v1/app-versions/5", nil, nil)
		wantError(t, "unpublish twice", st, body, http.StatusNotFound, "version_not_found", "Version not found")
		st, body = r.do("GET", "/api/download/5", nil, nil)
		wantError(t, "download unpublished", st, body, http.StatusNotFound, "version_not_found", "Version not found")
		st, body = r.do("GET", "/api/app-version", nil, nil)
		wantError(t, "unpublished was active", st, body, http.StatusNotFound, "no_active_version", "No active version available")
		if vs := r.versions(); len(vs) != 1 || vs[6] == nil {
			t.Errorf("list after unpublish: %v", vs)
		}
		if n := objectCount(t, b); n != 1 {
			t.Errorf("objects after unpublish = %d, want 1", n)
		}
		// The code is free again.
		r.mustUpload("1.2.0-rebuild", 5, apk(500, 6))
		if got := r.metric("apitosms_releases_uploads_total", "outcome", "published"); got != 3 {
			t.Errorf("published uploads metric = %v, want 3", got)
		}
		if got := r.metric("apitosms_releases_uploads_total", "outcome", "duplicate"); got != 1 {
			t.Errorf("duplicate uploads metric = %v, want 1", got)
		}
	})
}

func TestUploadTooLarge(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := testConfig()
		cfg.MaxAPKBytes = 64 << 10
		r := start(t, b, cfg)
		st, body := r.upload("1.0.0", 1, "", apk(300<<10, 1))
		wantError(t, "too large", st, body, http.StatusRequestEntityTooLarge, "apk_too_large", "")
		r.mustUpload("1.0.0", 1, apk(64<<10, 2)) // exactly the limit
		if n := objectCount(t, b); n != 1 {
			t.Errorf("objects = %d, want 1 (the refused upload left chunks behind)", n)
		}
	})
}

// TestConcurrentDuplicateUploads: of several uploads of one versionCode at
// once, exactly one is published and no refused file stays stored.
func TestConcurrentDuplicateUploads(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := start(t, b, testConfig())
		const n = 6
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { statuses[i], _ = r.upload("2.0.0", 42, "", apk(200<<10, uint64(i))) })
		}
		wg.Wait()
		created, conflicts := 0, 0
		for _, st := range statuses {
			switch st {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
				conflicts++
			}
		}
		if created != 1 || conflicts != n-1 {
			t.Errorf("statuses %v: want one 201 and %d 409", statuses, n-1)
		}
		if c := objectCount(t, b); c != 1 {
			t.Errorf("objects = %d, want 1", c)
		}
	})
}

// TestConcurrentActivations: after 20 concurrent activations of different
// versions exactly one is active, and at no moment during them is there
// none or more than one.
func TestConcurrentActivations(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := start(t, b, testConfig())
		const n = 20
		for code := int64(1); code <= n; code++ {
			r.mustUpload(fmt.Sprintf("1.%d", code), code, apk(1024, uint64(code)))
		}
		if st, body := r.do("POST", "/admin/v1/app-versions/1/activate", nil, nil); st != http.StatusOK {
			t.Fatalf("activate: %d %v", st, body)
		}
		stop := make(chan struct{})
		watched := make(chan []string, 1)
		go func() { // watch the public list while activations run
			var bad []string
			for {
				select {
				case <-stop:
					watched <- bad
					return
				default:
				}
				st, body := r.do("GET", "/api/app-versions", nil, nil)
				active := 0
				for _, v := range body["versions"].([]any) {
					if v.(map[string]any)["isActive"] == true {
						active++
					}
				}
				if st != http.StatusOK || active != 1 {
					bad = append(bad, fmt.Sprintf("status %d, %d active", st, active))
				}
			}
		}()
		var wg sync.WaitGroup
		for code := 1; code <= n; code++ {
			wg.Go(func() {
				if st, body := r.do("POST", fmt.Sprintf("/admin/v1/app-versions/%d/activate", code), nil, nil); st != http.StatusOK {
					t.Errorf("activate %d: %d %v", code, st, body)
				}
			})
		}
		wg.Wait()
		close(stop)
		if bad := <-watched; len(bad) > 0 {
			t.Errorf("during activations: %v", bad)
		}
		var active []int64
		for code, v := range r.versions() {
			if v["isActive"] == true {
				active = append(active, code)
			}
		}
		if len(active) != 1 {
			t.Fatalf("active versions %v, want exactly one", active)
		}
		st, body := r.do("GET", "/api/app-version", nil, nil)
		if st != http.StatusOK || body["versionCode"] != float64(active[0]) {
			t.Errorf("app-version %d %v, want code %d", st, body, active[0])
		}
	})
}
