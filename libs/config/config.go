// Package config reads the process configuration from the environment, once,
// in run(); no other package reads the environment.
//
// Every read goes through a Reader, which checks the value (a malformed or
// out-of-range setting is an error naming the variable, never a silent
// default) and records the variable with its default, so `apitosms -h` lists
// exactly the variables the code reads.
package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Getenv looks up one variable; os.Getenv in main, a map in tests.
type Getenv func(string) string

// Common is the configuration every process shares (contract §8).
type Common struct {
	HTTPAddr        string        // APITOSMS_HTTP_ADDR
	PublicURL       string        // APITOSMS_PUBLIC_URL
	DataDir         string        // APITOSMS_DATA_DIR
	AdminToken      string        // APITOSMS_ADMIN_TOKEN (a secret: never logged)
	NATSURL         string        // APITOSMS_NATS_URL; empty = embedded (its credentials are secrets)
	DatabaseURL     string        // APITOSMS_DATABASE_URL; empty = SQLite (a secret: never logged)
	Namespace       string        // APITOSMS_NAMESPACE: prefix of streams, subjects and buckets
	Replicas        int           // APITOSMS_STREAM_REPLICAS
	BrokerTimeout   time.Duration // APITOSMS_BROKER_TIMEOUT: one attempt of a broker call (KV op, publish ack, rpc)
	LogLevel        string        // APITOSMS_LOG_LEVEL: debug, info, warn or error (lower case)
	ShutdownTimeout time.Duration // APITOSMS_SHUTDOWN_TIMEOUT
	DebugAddr       string        // APITOSMS_DEBUG_ADDR: net/http/pprof listener; empty = off
}

// Var is a variable a Reader was asked for.
type Var struct {
	Key     string
	Default string // as the user would write it; "" = unset
	Secret  bool   // never printed, logged or echoed in an error
}

// Reader reads variables, collecting every problem and every variable read.
type Reader struct {
	get  Getenv
	errs []error
	vars []Var
}

// NewReader reads from get.
func NewReader(get Getenv) *Reader { return &Reader{get: get} }

// Vars lists the variables read so far, each once, in the order first read.
func (r *Reader) Vars() []Var { return slices.Clone(r.vars) }

// lookup records key and returns its value ("" when unset).
func (r *Reader) lookup(key, def string, secret bool) string {
	if i := slices.IndexFunc(r.vars, func(v Var) bool { return v.Key == key }); i >= 0 {
		r.vars[i].Secret = r.vars[i].Secret || secret
	} else {
		r.vars = append(r.vars, Var{Key: key, Default: def, Secret: secret})
	}
	return r.get(key)
}

// fail records a problem with key.
func (r *Reader) fail(key, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// String returns the variable or def when unset.
func (r *Reader) String(key, def string) string {
	if v := r.lookup(key, def, false); v != "" {
		return v
	}
	return def
}

// Secret is String for a secret: it is never shown, not even in errors.
func (r *Reader) Secret(key, def string) string {
	if v := r.lookup(key, def, true); v != "" {
		return v
	}
	return def
}

// Int returns the variable as a positive integer, or def when unset.
func (r *Reader) Int(key string, def int) int {
	return r.IntMin(key, def, 1)
}

// IntMin returns the variable as an integer of at least min, or def when unset.
func (r *Reader) IntMin(key string, def, min int) int {
	return int(r.int64(key, int64(def), int64(min), strconv.IntSize))
}

// IntRange returns the variable as an integer within lo..hi, or def when unset.
func (r *Reader) IntRange(key string, def, lo, hi int) int {
	n := r.IntMin(key, def, lo)
	if n > hi {
		r.fail(key, "%d is out of range (want %d to %d)", n, lo, hi)
		return def
	}
	return n
}

// Int64 returns the variable as a positive int64, or def when unset.
func (r *Reader) Int64(key string, def int64) int64 {
	return r.int64(key, def, 1, 64)
}

func (r *Reader) int64(key string, def, min int64, bits int) int64 {
	v := strings.TrimSpace(r.lookup(key, strconv.FormatInt(def, 10), false))
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil {
		r.fail(key, "%q is not an integer", v)
		return def
	}
	if n < min {
		if min == 1 {
			r.fail(key, "%d: want a positive integer", n)
		} else {
			r.fail(key, "%d: want at least %d", n, min)
		}
		return def
	}
	return n
}

// Duration returns the variable as a positive duration ("500ms", "30s",
// "5m", "1h"), or def when unset.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.lookup(key, def.String(), false))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(key, "%q is not a duration (write it like 500ms, 30s, 5m or 1h)", v)
		return def
	}
	if d <= 0 {
		r.fail(key, "%s: want a positive duration", v)
		return def
	}
	return d
}

// DurationOrZero is Duration that also takes 0 (for "off").
func (r *Reader) DurationOrZero(key string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.lookup(key, def.String(), false))
	if v == "0" {
		return 0
	}
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(key, "%q is not a duration (write it like 500ms, 30s, 5m or 1h, or 0)", v)
		return def
	}
	if d < 0 {
		r.fail(key, "%s: want 0 or a positive duration", v)
		return def
	}
	return d
}

// Bool returns the variable as a boolean (true/false, 1/0, yes/no, on/off),
// or def when unset.
func (r *Reader) Bool(key string, def bool) bool {
	v := strings.ToLower(strings.TrimSpace(r.lookup(key, strconv.FormatBool(def), false)))
	switch v {
	case "":
		return def
	case "1", "t", "true", "yes", "y", "on":
		return true
	case "0", "f", "false", "no", "n", "off":
		return false
	}
	r.fail(key, "%q is not a boolean (want true or false)", v)
	return def
}

// OneOf returns the variable, lower-cased, which must be one of allowed
// (lower case), or def when unset.
func (r *Reader) OneOf(key, def string, allowed ...string) string {
	v := strings.ToLower(strings.TrimSpace(r.lookup(key, def, false)))
	if v == "" {
		return def
	}
	if !slices.Contains(allowed, v) {
		r.fail(key, "%q is not one of %s", v, strings.Join(allowed, ", "))
		return def
	}
	return v
}

// Addr returns the variable as a listen address (host:port, host optional),
// or def when unset.
func (r *Reader) Addr(key, def string) string {
	v := strings.TrimSpace(r.lookup(key, def, false))
	if v == "" {
		return def
	}
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		r.fail(key, "%q is not a listen address (want host:port or :port, e.g. :8080)", v)
		return def
	}
	return v
}

// Error is a configuration that cannot be used: every problem found, each
// naming its variable.
type Error struct{ Problems []error }

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

// Unwrap returns the problems.
func (e *Error) Unwrap() []error { return e.Problems }

// Err reports every malformed variable read so far as an *Error, or nil.
func (r *Reader) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return &Error{Problems: slices.Clone(r.errs)}
}

// IsError reports whether err is (or wraps) a configuration *Error.
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// LogLevels are the accepted values of APITOSMS_LOG_LEVEL.
var LogLevels = []string{"debug", "info", "warn", "error"}

// ReadCommon reads the shared configuration.
func ReadCommon(r *Reader) Common {
	return Common{
		HTTPAddr:        r.Addr("APITOSMS_HTTP_ADDR", ":8080"),
		PublicURL:       r.PublicURL("APITOSMS_PUBLIC_URL", "http://localhost:8080"),
		DataDir:         r.String("APITOSMS_DATA_DIR", "./data"),
		AdminToken:      r.Secret("APITOSMS_ADMIN_TOKEN", ""),
		NATSURL:         r.NATSURL("APITOSMS_NATS_URL"),
		DatabaseURL:     r.DatabaseURL("APITOSMS_DATABASE_URL"),
		Namespace:       r.String("APITOSMS_NAMESPACE", "apitosms"),
		Replicas:        r.IntRange("APITOSMS_STREAM_REPLICAS", 1, 1, 5),
		BrokerTimeout:   r.Duration("APITOSMS_BROKER_TIMEOUT", 2*time.Second),
		LogLevel:        r.OneOf("APITOSMS_LOG_LEVEL", "info", LogLevels...),
		ShutdownTimeout: r.Duration("APITOSMS_SHUTDOWN_TIMEOUT", 20*time.Second),
		DebugAddr:       r.Addr("APITOSMS_DEBUG_ADDR", ""),
	}
}
