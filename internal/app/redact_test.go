package app

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/config"
)

// No credential of the configuration reaches a log line, whichever part of
// the record holds it, nor the error a failed start returns.
func TestSecretsRedacted(t *testing.T) {
	rd := config.Common{
		AdminToken:  "tok-secret-123",
		NATSURL:     "nats://u:pw-secret@h:4222",
		DatabaseURL: "postgres://app:db-secret@db/x",
	}.Redactor()
	var out bytes.Buffer
	log := newLogger(&out, "debug", rd).With("url", "nats://u:pw-secret@h:4222")
	cause := errors.New(`parse "postgres://app:db-secret@db/x": bad`)
	log.WithGroup("g").Error("token tok-secret-123 seen", "err", cause, "any", []string{"tok-secret-123"},
		slog.Group("inner", "dsn", "postgres://app:db-secret@db/x"))
	for _, secret := range []string{"tok-secret-123", "pw-secret", "db-secret"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("log line holds %q: %s", secret, out.String())
		}
	}
	if !strings.Contains(out.String(), "nats://u:xxxxx@h:4222") || !strings.Contains(out.String(), "token xxxxx seen") {
		t.Errorf("log line not redacted as expected: %s", out.String())
	}

	wrapped := fmt.Errorf("start: %w", &UsageError{Err: cause})
	err := redactError(wrapped, rd)
	var usage *UsageError
	if strings.Contains(err.Error(), "db-secret") || !errors.As(err, &usage) || !errors.Is(err, cause) {
		t.Errorf("redactError = %q (usage %v)", err, usage)
	}
	if redactError(nil, rd) != nil {
		t.Error("redactError(nil) != nil")
	}
}
