package status_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/services/status"
)

func TestLoadConfig(t *testing.T) {
	env := map[string]string{
		"APITOSMS_STATUS_INGEST_BATCH":    "8",
		"APITOSMS_STATUS_CATCHUP_TIMEOUT": "2s",
		"APITOSMS_SHUTDOWN_TIMEOUT":       "3s",
	}
	r := config.NewReader(func(k string) string { return env[k] })
	cfg := status.LoadConfig(r, config.ReadCommon(r))
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	want := status.DefaultConfig()
	want.IngestBatch, want.CatchUpTimeout, want.ShutdownTimeout = 8, 2*time.Second, 3*time.Second
	if cfg != want {
		t.Errorf("config %+v, want %+v", cfg, want)
	}
}

// TestCatchUpTimeout: while the ingest consumer is stuck behind a poison
// message, a report naming a message not stored yet is answered unavailable
// (not "Unknown hash") once the catch-up timeout passed.
func TestCatchUpTimeout(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		cfg := status.DefaultConfig()
		cfg.CatchUpTimeout = 300 * time.Millisecond
		h := startWith(t, b, cfg)
		if _, err := h.br.JS.Publish(context.Background(), b.Names.AcceptedSubject(), []byte("not json")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := h.apply(events.ApplyRequest{AccountID: 1, Reports: []events.ApplyReport{{Index: 0, Pos: unknownPos, Status: 2}}})
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.ErrUnavailable.Code {
			t.Fatalf("apply: %v, want unavailable", err)
		}
		if waited := time.Since(start); waited < cfg.CatchUpTimeout {
			t.Errorf("answered after %v, before the catch-up timeout", waited)
		}
		if n := h.metric(t, "apitosms_status_apply_wait_seconds", nil); n < 1 {
			t.Errorf("apply wait observations = %v, want >= 1", n)
		}
	})
}
