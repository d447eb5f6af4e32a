package loadgen

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/internal/testbin"
	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/testkit"
)

var serverBinary = testbin.Apitosms

// backends builds the server and yields the all-in-one spawn, and the
// distributed one when the external test servers are configured (skipped
// in -short).
func backends(t *testing.T, fn func(t *testing.T, sc SpawnConfig)) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and spawns the server")
	}
	bin, err := serverBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("all-in-one", func(t *testing.T) { fn(t, SpawnConfig{Bin: bin}) })
	natsURL, dbURL := os.Getenv(testkit.EnvNATS), os.Getenv(testkit.EnvDatabase)
	if natsURL != "" && dbURL != "" {
		t.Run("distributed", func(t *testing.T) { fn(t, SpawnConfig{Bin: bin, NATSURL: natsURL, DatabaseURL: dbURL}) })
	}
}

// A short mixed run against a spawned server: merchants queue, phones pull
// and report concurrently; afterwards every accepted message was pulled
// exactly once and reported (by hash, by the server's "updated" counts, and
// a final empty get_messages on every account), with no errors, and the
// server's resources were read. In distributed mode the run's streams and
// database are gone afterwards.
func TestRunMixedVerifies(t *testing.T) {
	backends(t, func(t *testing.T, sc SpawnConfig) {
		var log strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := Run(ctx, Config{
			Scenario: "test", Mode: ModeMixed, Spawn: &sc,
			Merchants: 2, Batch: 100, Phones: 2, Limit: 50, Duration: 2 * time.Second,
			Success: 0.9, Verify: true, Log: &log,
		})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, log.String())
		}
		js, _ := json.Marshal(res)
		t.Logf("%s", js)
		if res.Accepted == 0 || res.Pulled == 0 {
			t.Fatalf("accepted %d, pulled %d: want both > 0", res.Accepted, res.Pulled)
		}
		if res.Verified == nil || !*res.Verified {
			t.Fatalf("not verified: %s", res.VerifyError)
		}
		if res.ErrorTotal != 0 {
			t.Fatalf("errors: %v %s", res.Errors, res.ServerStop)
		}
		if res.Sent == 0 || res.Failed == 0 || res.Sent+res.Failed != res.Reported {
			t.Fatalf("sent %d + failed %d, reported %d: want both statuses reported", res.Sent, res.Failed, res.Reported)
		}
		if res.Server == nil || res.Server.CPUSeconds <= 0 || res.Server.PeakRSSMiB <= 0 {
			t.Fatalf("server usage not measured: %+v", res.Server)
		}
		for _, k := range []string{"queue", "get_messages", "status", "queue_to_phone"} {
			if l := res.Latency[k]; l.Count == 0 || l.P50 <= 0 || l.P99 < l.P50 {
				t.Fatalf("latency %s: %+v", k, l)
			}
		}
		if row := res.Row(); strings.Count(row, "|") != strings.Count(strings.SplitN(TableHeader, "\n", 2)[0], "|") {
			t.Fatalf("row and header differ in columns:\n%s%s", TableHeader, row)
		}
		if sc.NATSURL != "" {
			assertNamespaceGone(t, sc.NATSURL, res.Namespace)
		}
	})
}

// Drain mode queues exactly the asked number first, and the phones then
// pull and report all of it.
func TestRunDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and spawns the server")
	}
	bin, err := serverBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		Mode: ModeDrain, Spawn: &SpawnConfig{Bin: bin},
		Merchants: 3, Batch: 250, Phones: 2, Limit: 200, Messages: 2_000, Success: 1, Verify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Prefill == nil || res.Prefill.Messages != 2_000 {
		t.Fatalf("prefill: %+v, want exactly 2000", res.Prefill)
	}
	if res.Pulled != 2_000 || res.Reported != 2_000 || res.Updated != 2_000 {
		t.Fatalf("pulled %d, reported %d, updated %d: want 2000 each", res.Pulled, res.Reported, res.Updated)
	}
	if res.Verified == nil || !*res.Verified || res.ErrorTotal != 0 {
		t.Fatalf("verified %v (%s), errors %v", res.Verified, res.VerifyError, res.Errors)
	}
}

// A drain with half the backlog scheduled for later and a tenth high
// priority (contract §12) pulls exactly the due half, hands out none of the
// scheduled ones, and ends when the due ones are drained (not at the cap),
// on both backends.
func TestRunDrainExtras(t *testing.T) {
	backends(t, func(t *testing.T, sc SpawnConfig) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := Run(ctx, Config{
			Mode: ModeDrain, Spawn: &sc, Duration: time.Minute,
			Merchants: 3, Batch: 250, Phones: 4, Limit: 100, Messages: 3_000, Success: 1, Verify: true,
			Scheduled: 0.5, High: 0.1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Prefill == nil || res.Prefill.Messages != 3_000 || res.Prefill.Scheduled != 1_500 {
			t.Fatalf("prefill: %+v, want 3000 with 1500 scheduled", res.Prefill)
		}
		if res.Pulled != 1_500 || res.Reported != 1_500 || res.Updated != 1_500 {
			t.Fatalf("pulled %d, reported %d, updated %d: want the 1500 due each", res.Pulled, res.Reported, res.Updated)
		}
		if res.Verified == nil || !*res.Verified || res.ErrorTotal != 0 {
			t.Fatalf("verified %v (%s), errors %v", res.Verified, res.VerifyError, res.Errors)
		}
		if res.Seconds >= 50 {
			t.Fatalf("the drain ran to its cap (%.0f s): it did not see the due messages drained", res.Seconds)
		}
		if row := res.Row(); !strings.Contains(row, "1,500 of them scheduled for later") || !strings.Contains(row, "10% high priority") {
			t.Fatalf("row does not describe the extras: %s", row)
		}
	})
}

// Paced phones (-poll-every) start a poll at most once per interval: in a
// window of 2 s at 250 ms each phone polls at most 9 times (closed loop, the
// same 4 phones would pull the whole 2,000 in a fraction of the window),
// every poll of the standing backlog is a full one and is reported, and the
// rest is still handed out exactly once afterwards, on both backends.
func TestRunDrainPaced(t *testing.T) {
	backends(t, func(t *testing.T, sc SpawnConfig) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const phones, limit, every = 4, 10, 250 * time.Millisecond
		res, err := Run(ctx, Config{
			Mode: ModeDrain, Spawn: &sc, Duration: 2 * time.Second, PollEvery: every,
			Merchants: 2, Batch: 250, Phones: phones, Limit: limit, Messages: 2_000, Success: 1, Verify: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		polls := res.Latency["get_messages"].Count
		most := int64(phones) * (int64(time.Duration(res.Seconds*float64(time.Second))/every) + 1)
		if polls < 2*phones || polls > most {
			t.Fatalf("%d polls in %.2f s: want %d..%d (paced at %s)", polls, res.Seconds, 2*phones, most, every)
		}
		if res.Pulled != polls*limit || res.Reported != res.Pulled || res.Updated != res.Pulled {
			t.Fatalf("%d polls, pulled %d, reported %d, updated %d: want %d each", polls, res.Pulled, res.Reported, res.Updated, polls*limit)
		}
		if res.Verified == nil || !*res.Verified || res.ErrorTotal != 0 {
			t.Fatalf("verified %v (%s), errors %v", res.Verified, res.VerifyError, res.Errors)
		}
		if res.PollEveryMs != 250 || !strings.Contains(res.Row(), "at most every 250ms") {
			t.Fatalf("pacing not in the result: %v ms, row %s", res.PollEveryMs, res.Row())
		}
	})
}

func assertNamespaceGone(t *testing.T, natsURL, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	br, err := broker.Open(ctx, broker.Config{URL: natsURL, Name: "loadgen-test"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	prefix := strings.ToUpper(ns) + "_"
	names := br.JS.StreamNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(strings.TrimPrefix(strings.TrimPrefix(name, "KV_"), "OBJ_"), prefix) {
			t.Errorf("stream %s left behind", name)
		}
	}
}

// A short stores run (contract §13): every signed delivery is answered 200
// and becomes exactly one queued SMS, with no errors, and the row and the
// server's CPU are there, on both backends.
func TestRunStores(t *testing.T) {
	backends(t, func(t *testing.T, sc SpawnConfig) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := Run(ctx, Config{Mode: ModeStores, Spawn: &sc, Duration: 2 * time.Second, Merchants: 2, Batch: 1, Senders: 4})
		if err != nil {
			t.Fatal(err)
		}
		s := res.Stores
		if s == nil || s.Deliveries == 0 || s.Queued != s.Deliveries || res.ErrorTotal != 0 {
			t.Fatalf("stores %+v, errors %v: want every delivery queued once", s, res.Errors)
		}
		if l := res.Latency["store_hook"]; l.Count != s.Deliveries {
			t.Fatalf("store_hook latency counted %d of %d deliveries", l.Count, s.Deliveries)
		}
		if res.Server == nil || res.Server.CPUSeconds <= 0 || res.Accepted != 0 {
			t.Fatalf("server %+v, accepted through /queue %d", res.Server, res.Accepted)
		}
		if row := res.Row(); !strings.Contains(row, "2 WooCommerce stores, 4 senders") || !strings.Contains(row, "orders/s queued as SMS") {
			t.Fatalf("row: %s", row)
		}
	})
}
