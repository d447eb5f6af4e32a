// Package config reads the process configuration from the environment, once,
// in run(); no other package reads the environment.
package config

import (
	"fmt"
	"strconv"
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
	NATSURL         string        // APITOSMS_NATS_URL; empty = embedded
	DatabaseURL     string        // APITOSMS_DATABASE_URL; empty = SQLite (a secret: never logged)
	Namespace       string        // APITOSMS_NAMESPACE: prefix of streams, subjects and buckets
	Replicas        int           // APITOSMS_STREAM_REPLICAS
	BrokerTimeout   time.Duration // APITOSMS_BROKER_TIMEOUT: one attempt of a broker call (KV op, publish ack, rpc)
	LogLevel        string        // APITOSMS_LOG_LEVEL
	ShutdownTimeout time.Duration // APITOSMS_SHUTDOWN_TIMEOUT
	DebugAddr       string        // APITOSMS_DEBUG_ADDR: net/http/pprof listener; empty = off
}

// Reader collects parse errors while reading variables.
type Reader struct {
	get  Getenv
	errs []error
}

// NewReader reads from get.
func NewReader(get Getenv) *Reader { return &Reader{get: get} }

// String returns the variable or def when unset.
func (r *Reader) String(key, def string) string {
	if v := r.get(key); v != "" {
		return v
	}
	return def
}

// Int returns the variable as an int, or def.
func (r *Reader) Int(key string, def int) int {
	v := r.get(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: not an integer", key))
		return def
	}
	return n
}

// Int64 returns the variable as an int64, or def.
func (r *Reader) Int64(key string, def int64) int64 {
	v := r.get(key)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: not an integer", key))
		return def
	}
	return n
}

// Duration returns the variable as a duration ("5s"), or def.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v := r.get(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: not a duration", key))
		return def
	}
	return d
}

// Err reports every malformed variable read so far.
func (r *Reader) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration: %v", r.errs)
}

// ReadCommon reads the shared configuration.
func ReadCommon(r *Reader) Common {
	return Common{
		HTTPAddr:        r.String("APITOSMS_HTTP_ADDR", ":8080"),
		PublicURL:       r.String("APITOSMS_PUBLIC_URL", "http://localhost:8080"),
		DataDir:         r.String("APITOSMS_DATA_DIR", "./data"),
		AdminToken:      r.String("APITOSMS_ADMIN_TOKEN", ""),
		NATSURL:         r.String("APITOSMS_NATS_URL", ""),
		DatabaseURL:     r.String("APITOSMS_DATABASE_URL", ""),
		Namespace:       r.String("APITOSMS_NAMESPACE", "apitosms"),
		Replicas:        r.Int("APITOSMS_STREAM_REPLICAS", 1),
		BrokerTimeout:   r.Duration("APITOSMS_BROKER_TIMEOUT", 2*time.Second),
		LogLevel:        r.String("APITOSMS_LOG_LEVEL", "info"),
		ShutdownTimeout: r.Duration("APITOSMS_SHUTDOWN_TIMEOUT", 20*time.Second),
		DebugAddr:       r.String("APITOSMS_DEBUG_ADDR", ""),
	}
}
