// Package releases publishes the companion Android app: operators upload APK
// versions and activate one; phones read the active version and download
// APKs (contract §5 and the app-version part of §6).
//
// APK bytes live in a JetStream object store bucket (Names.ReleasesBucket,
// file storage), so every replica serves every file, embedded or clustered;
// metadata and download counters live in the service's own tables
// (release_versions, release_active). Uploads and downloads are streamed.
//
// The fiber app serving Routes must be built with StreamRequestBody: true
// and DisablePreParseMultipartForm: true; otherwise fasthttp parses
// multipart uploads itself (up to 16 MiB in memory, the rest in temporary
// files, ignoring BodyLimit) before the handler sees them.
package releases

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/wiring"
	"github.com/apitosms/apitosms/services/releases/internal/blob"
	"github.com/apitosms/apitosms/services/releases/internal/httpapi"
	"github.com/apitosms/apitosms/services/releases/internal/metrics"
	"github.com/apitosms/apitosms/services/releases/internal/store"
)

// Config is the releases service's settings.
type Config struct {
	AdminToken  string // bearer token of the operator API; empty refuses every operator request
	PublicURL   string // base of downloadUrl (a trailing slash is dropped)
	MaxAPKBytes int64  // largest accepted APK; larger uploads answer 413 apk_too_large
	Replicas    int    // replicas of the object store bucket in a NATS cluster
	// DownloadTimeout bounds the transfer of one download (slower clients
	// get a short body and resume with Range).
	DownloadTimeout time.Duration
}

// DefaultConfig returns the defaults: 200 MiB APKs, one replica, one hour
// per download.
func DefaultConfig() Config {
	return Config{PublicURL: "http://localhost:8080", MaxAPKBytes: 200 << 20, Replicas: 1, DownloadTimeout: time.Hour}
}

// LoadConfig reads APITOSMS_RELEASES_MAX_APK_BYTES and
// APITOSMS_RELEASES_DOWNLOAD_TIMEOUT, and takes the admin
// token, public URL and stream replicas from the common configuration.
func LoadConfig(r *config.Reader, c config.Common) Config {
	d := DefaultConfig()
	return Config{
		AdminToken:      c.AdminToken,
		PublicURL:       strings.TrimRight(c.PublicURL, "/"),
		MaxAPKBytes:     r.Int64("APITOSMS_RELEASES_MAX_APK_BYTES", d.MaxAPKBytes),
		Replicas:        max(c.Replicas, 1),
		DownloadTimeout: r.Duration("APITOSMS_RELEASES_DOWNLOAD_TIMEOUT", d.DownloadTimeout),
	}
}

// Deps are the service's connections.
type Deps struct {
	Broker     *broker.Broker
	DB         *bun.DB // the releases database
	Names      events.Names
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Service is one releases replica. Replicas share the object store bucket
// and the database; any replica serves any request.
type Service struct {
	store *store.Store
	http  *httpapi.Handler
	log   *slog.Logger
}

// New migrates the releases tables, creates or opens the object store
// bucket and registers the metrics. It starts nothing.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := wiring.Check("releases", deps); err != nil {
		return nil, err
	}
	if cfg.MaxAPKBytes <= 0 || cfg.DownloadTimeout <= 0 {
		return nil, errors.New("releases: MaxAPKBytes and DownloadTimeout must be positive")
	}
	log := wiring.Logger(deps.Log, "releases")
	reg := deps.Registerer
	st, err := store.Open(ctx, deps.DB)
	if err != nil {
		return nil, err
	}
	blobs, err := blob.Open(ctx, deps.Broker.JS, deps.Names.ReleasesBucket(), cfg.Replicas)
	if err != nil {
		return nil, err
	}
	m := metrics.New(reg)
	h := httpapi.New(httpapi.Config{
		AdminToken: cfg.AdminToken, PublicURL: cfg.PublicURL, MaxAPKBytes: cfg.MaxAPKBytes,
		DownloadTimeout: cfg.DownloadTimeout,
	}, st, blobs, m, log)
	return &Service{store: st, http: h, log: log}, nil
}

// Run has no background work: it blocks until ctx is done and returns nil.
// In-flight requests are drained by the HTTP server's shutdown.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Ready reports whether the releases database answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// Routes registers the public App Version endpoints (/api/app-version,
// /api/app-versions, /download/app.apk, /api/download/:code, GET and HEAD)
// and the operator API under /admin/v1/app-versions (admin bearer token).
func (s *Service) Routes(r fiber.Router) { s.http.Register(r) }
