package phonesim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apitosms/apitosms/internal/loadgen"
	"github.com/apitosms/apitosms/internal/phonesim"
)

// Phones sharing one token against the real server (spawned binary): they
// pull every queued message exactly once, whatever its text, report each
// with 2 or 3 at the configured rate, and the server counts every report;
// the queue is empty afterwards. A wrong token stops the phones at once.
func TestPhonesDrainQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and spawns the server")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "apitosms")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/apitosms").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := loadgen.Spawn(ctx, loadgen.SpawnConfig{Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	client := phonesim.NewClient(4)
	toks, err := loadgen.CreateAccounts(ctx, client, srv.URL, srv.AdminToken, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 250
	items := make([]map[string]string, n)
	for i := range items {
		items[i] = map[string]string{"phone": fmt.Sprintf("+4470000%05d", i), "message": fmt.Sprintf("Order %d \"shipped\" é ✓", i)}
	}
	body, _ := json.Marshal(items)
	resp, err := http.Post(srv.URL+"/api/"+toks[0]+"/queue", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("queue: %d", resp.StatusCode)
	}

	var mu sync.Mutex
	seen := map[string]bool{}
	texts := map[string]bool{}
	cfg := phonesim.Config{URL: srv.URL, Token: toks[0], Limit: 40, Success: 0.5, Device: "a-very-long-device-name", Client: client,
		Hooks: phonesim.Hooks{OnMessages: func(msgs []phonesim.Message, _ time.Time) {
			mu.Lock() // hooks run on each phone's goroutine
			defer mu.Unlock()
			for _, m := range msgs {
				if seen[m.Hash] {
					t.Errorf("message %s pulled twice", m.Hash)
				}
				seen[m.Hash] = true
				texts[m.Text] = true
			}
		}}}
	stats, err := phonesim.Run(ctx, cfg, phonesim.RunOptions{Concurrency: 2, StopWhenEmpty: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", stats)
	if stats.Pulled != n || stats.Reported != n || stats.Updated != n || stats.Sent+stats.Failed != n {
		t.Fatalf("%s: want %d pulled, reported and updated", stats, n)
	}
	if len(seen) != n || !texts[items[n-1]["message"]] {
		t.Fatalf("%d distinct hashes, texts decoded: %v; want %d and the queued texts", len(seen), texts[items[n-1]["message"]], n)
	}
	if stats.Sent < n/4 || stats.Failed < n/4 || stats.ReportErrors != 0 || stats.RequestErrors != 0 {
		t.Fatalf("%s: want about half sent, half failed, no errors", stats)
	}
	get, err := http.Get(srv.URL + "/api/" + toks[0] + "/get_messages")
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if string(bytes.TrimSpace(rest)) != "[]" {
		t.Fatalf("queue not empty afterwards: %s", rest)
	}

	bad := cfg
	bad.Token = fmt.Sprintf("%064d", 0)
	if _, err := phonesim.Run(ctx, bad, phonesim.RunOptions{Concurrency: 2}); !errors.Is(err, phonesim.ErrUnauthorized) {
		t.Fatalf("unknown token: err %v, want ErrUnauthorized", err)
	}
}
