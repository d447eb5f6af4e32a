package config

import (
	"strings"
	"testing"
	"time"
)

func read(env map[string]string) (Common, error) {
	r := NewReader(func(k string) string { return env[k] })
	c := ReadCommon(r)
	return c, r.Err()
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := read(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Common{HTTPAddr: ":8080", PublicURL: "http://localhost:8080", DataDir: "./data", Namespace: "apitosms",
		Replicas: 1, BrokerTimeout: 2 * time.Second, LogLevel: "info", ShutdownTimeout: 20 * time.Second}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
}

func TestAccepted(t *testing.T) {
	t.Parallel()
	c, err := read(map[string]string{
		"APITOSMS_LOG_LEVEL":        "WARN",
		"APITOSMS_STREAM_REPLICAS":  "3",
		"APITOSMS_SHUTDOWN_TIMEOUT": "1m30s",
		"APITOSMS_NATS_URL":         "nats://u:p@n1:4222, tls://n2:4222,n3",
		"APITOSMS_DATABASE_URL":     "postgres://app:secret@db:5432/sms?sslmode=disable",
		"APITOSMS_PUBLIC_URL":       "https://sms.example.com/",
		"APITOSMS_HTTP_ADDR":        "127.0.0.1:9000",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "warn" || c.Replicas != 3 || c.ShutdownTimeout != 90*time.Second || c.PublicURL != "https://sms.example.com" {
		t.Errorf("read %+v", c)
	}
}

// Every malformed setting is refused with an error naming the variable,
// and never echoing a credential.
func TestRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, value string
		want       string // in the error
	}{
		{"APITOSMS_LOG_LEVEL", "verbose", `"verbose" is not one of debug, info, warn, error`},
		{"APITOSMS_SHUTDOWN_TIMEOUT", "20", "not a duration"},
		{"APITOSMS_SHUTDOWN_TIMEOUT", "-5s", "positive duration"},
		{"APITOSMS_SHUTDOWN_TIMEOUT", "0s", "positive duration"},
		{"APITOSMS_STREAM_REPLICAS", "three", "not an integer"},
		{"APITOSMS_STREAM_REPLICAS", "0", "positive integer"},
		{"APITOSMS_STREAM_REPLICAS", "7", "out of range"},
		{"APITOSMS_HTTP_ADDR", "8080", "not a listen address"},
		{"APITOSMS_DEBUG_ADDR", "localhost", "not a listen address"},
		{"APITOSMS_PUBLIC_URL", "sms.example.com", "not an absolute http"},
		{"APITOSMS_NATS_URL", "nats://user:hunter2secret@host:4222:99", "entry 1 (nats://user:xxxxx@host:4222:99): bad port"},
		{"APITOSMS_NATS_URL", "nats://ok:4222,http://user:hunter2secret@h:80", "entry 2 (http://user:xxxxx@h:80): scheme"},
		{"APITOSMS_NATS_URL", "nats://hunter2secret@h:99999", "bad port"},
		{"APITOSMS_NATS_URL", "nats://user:hunter2%zzsecret@h", "entry 1 is not a NATS URL"},
		{"APITOSMS_DATABASE_URL", "mysql://root:hunter2secret@db/x", "mysql://root:xxxxx@db/x: must start with postgres://"},
		{"APITOSMS_DATABASE_URL", "postgres://u:hunter2secret@[::1/x", "not a URL"},
		{"APITOSMS_DATABASE_URL", "postgres:///x?password=hunter2secret", "no host"},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			_, err := read(map[string]string{tc.key: tc.value})
			if err == nil {
				t.Fatal("accepted")
			}
			if !IsError(err) {
				t.Errorf("error %T is not a *config.Error", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.key+": ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to name %s and say %q", msg, tc.key, tc.want)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error %q echoes a credential", msg)
			}
		})
	}
}

func TestAllProblemsReported(t *testing.T) {
	t.Parallel()
	_, err := read(map[string]string{"APITOSMS_LOG_LEVEL": "loud", "APITOSMS_STREAM_REPLICAS": "x"})
	if err == nil || !strings.Contains(err.Error(), "APITOSMS_LOG_LEVEL") || !strings.Contains(err.Error(), "APITOSMS_STREAM_REPLICAS") {
		t.Fatalf("err = %v, want both variables named", err)
	}
}

func TestReaderTypes(t *testing.T) {
	t.Parallel()
	env := map[string]string{"B1": "yes", "B2": "off", "B3": "maybe", "N": "0", "M": "-1"}
	r := NewReader(func(k string) string { return env[k] })
	if !r.Bool("B1", false) || r.Bool("B2", true) || !r.Bool("UNSET", true) {
		t.Error("Bool")
	}
	r.Bool("B3", false)
	if r.IntMin("N", 5, 0) != 0 {
		t.Error("IntMin 0")
	}
	r.IntMin("M", 5, 0)
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "B3: \"maybe\" is not a boolean") || !strings.Contains(err.Error(), "M: -1: want at least 0") {
		t.Errorf("err = %v", err)
	}
}

func TestVarsRecorded(t *testing.T) {
	t.Parallel()
	r := NewReader(func(string) string { return "" })
	ReadCommon(r)
	r.Int("APITOSMS_X_BATCH", 16)
	r.Duration("APITOSMS_X_LINGER", 2*time.Millisecond)
	got := map[string]Var{}
	for _, v := range r.Vars() {
		got[v.Key] = v
	}
	for key, want := range map[string]Var{
		"APITOSMS_HTTP_ADDR":    {Key: "APITOSMS_HTTP_ADDR", Default: ":8080"},
		"APITOSMS_ADMIN_TOKEN":  {Key: "APITOSMS_ADMIN_TOKEN", Secret: true},
		"APITOSMS_DATABASE_URL": {Key: "APITOSMS_DATABASE_URL", Secret: true},
		"APITOSMS_X_BATCH":      {Key: "APITOSMS_X_BATCH", Default: "16"},
		"APITOSMS_X_LINGER":     {Key: "APITOSMS_X_LINGER", Default: "2ms"},
	} {
		if got[key] != want {
			t.Errorf("%s recorded as %+v, want %+v", key, got[key], want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://user:pw123@h:4222":               "nats://user:xxxxx@h:4222",
		"nats://tok3n@h:4222":                    "nats://xxxxx@h:4222",
		"postgres://app@db/x":                    "postgres://app@db/x",
		"postgres://app:pw123@db/x?sslmode=off":  "postgres://app:xxxxx@db/x?sslmode=off",
		"postgres://db/x?password=pw123&user=ap": "postgres://db/x?password=xxxxx&user=ap",
		"nats://u:p@[::1":                        "<unparseable URL>",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	c := Common{
		AdminToken:  "admin-token-123",
		NATSURL:     "nats://u:natspass@h1:4222,nats://tokenvalue@h2,n3:4222",
		DatabaseURL: "postgres://apitosms:db%2Fpass@db/apitosms?password=qpass1",
	}
	r := c.Redactor()
	for in, want := range map[string]string{
		"admin-token-123 in a header":                       "xxxxx in a header",
		`parse "nats://u:natspass@h1:4222:1": invalid port`: `parse "nats://u:xxxxx@h1:4222:1": invalid port`,
		"dial nats://tokenvalue@h2: refused":                "dial nats://xxxxx@h2: refused",
		"postgres://apitosms:db%2Fpass@db/apitosms":         "postgres://apitosms:xxxxx@db/apitosms",
		"postgres://apitosms:db/pass@db":                    "postgres://apitosms:xxxxx@db",
		"dsn ?password=qpass1&x=y":                          "dsn ?password=xxxxx&x=y",
		// Words equal to a user name or a weak password elsewhere stay.
		"apitosms started; natspass is a word": "apitosms started; natspass is a word",
	} {
		if got := r.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if !(Common{}).Redactor().Empty() || r.Empty() {
		t.Error("Empty")
	}
	bad := Common{NATSURL: "nats://u:p w@[bad"}.Redactor()
	if got := bad.Redact("connect nats://u:p w@[bad: failed"); strings.Contains(got, "p w") {
		t.Errorf("unparseable URL not redacted: %q", got)
	}
}
