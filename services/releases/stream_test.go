package releases_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// heapPeak samples HeapInuse until stopped and reports the peak growth over
// the level at start (after a GC).
func heapPeak(t *testing.T) (stop func() uint64) {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	peak.Store(base)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load() - base
	}
}

// TestStreamedUpload uploads a 64 MiB APK generated on the fly (never held
// by the test either) and downloads it back; the SHA-256 survives the round
// trip and the process heap grows far less than the file.
//
// The bound is strict (32 MiB) with the external NATS server, where this
// process holds only the service and the test client. With the embedded
// backend the NATS server shares the heap, and its file store keeps written
// and read message blocks cached for 10 s (filestore CacheExpire), i.e. one
// copy of a fast transfer (about 90 MiB observed); there the bound only
// rules out a second copy held by the service.
func TestStreamedUpload(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := start(t, b, testConfig())
		const size = 64 << 20
		maxGrowth := uint64(32 << 20)
		if !b.External {
			maxGrowth = 2 * size
		}

		var framing bytes.Buffer
		w := multipart.NewWriter(&framing)
		_ = w.WriteField("version", "9.0.0")
		_ = w.WriteField("versionCode", "900")
		_ = w.WriteField("releaseNotes", "big one")
		_, _ = w.CreateFormFile("file", "app.apk")
		head := bytes.Clone(framing.Bytes())
		framing.Reset()
		_ = w.Close()
		tail := framing.Bytes()

		hasher := sha256.New()
		file := io.MultiReader(strings.NewReader("PK\x03\x04"),
			io.LimitReader(rand.NewChaCha8([32]byte{42}), size-4))
		body := io.MultiReader(bytes.NewReader(head), io.TeeReader(file, hasher), bytes.NewReader(tail))
		req, err := http.NewRequest("POST", r.url+"/admin/v1/app-versions", body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(head) + size + len(tail))
		req.Header.Set("Content-Type", w.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+adminToken)

		stop := heapPeak(t)
		started := time.Now()
		resp, err := r.hc.Do(req)
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		growth := stop()
		want := hex.EncodeToString(hasher.Sum(nil))
		t.Logf("upload of %d MiB: %v, peak heap growth %.1f MiB", size>>20, time.Since(started), float64(growth)/(1<<20))
		if resp.StatusCode != http.StatusCreated || v["sha256"] != want || v["fileSize"] != float64(size) {
			t.Fatalf("upload: %d %v", resp.StatusCode, v)
		}
		if growth > maxGrowth {
			t.Errorf("heap grew by %d MiB during a %d MiB upload (bound %d MiB): the file is held in memory", growth>>20, size>>20, maxGrowth>>20)
		}

		stop = heapPeak(t)
		resp, err = r.hc.Get(r.url + "/api/download/900")
		if err != nil {
			t.Fatal(err)
		}
		down := sha256.New()
		n, err := io.Copy(down, resp.Body)
		resp.Body.Close()
		growth = stop()
		t.Logf("download: peak heap growth %.1f MiB", float64(growth)/(1<<20))
		if err != nil || n != size || hex.EncodeToString(down.Sum(nil)) != want {
			t.Errorf("download: %d bytes, err %v, sha256 match %v", n, err, hex.EncodeToString(down.Sum(nil)) == want)
		}
		if growth > maxGrowth {
			t.Errorf("heap grew by %d MiB during a %d MiB download (bound %d MiB)", growth>>20, size>>20, maxGrowth>>20)
		}
	})
}
