// Package console is the web console (issue 12): server-rendered pages
// under /console/ for merchants (usage, API token, messages, phones,
// webhooks, settings) and operators (accounts), plus the operator's invite
// endpoint (contract §14). It owns merchant credentials (argon2id password
// hashes), invites and the tokens it issued (sealed); everything else it
// reads and writes through the other services' NATS requests. Sessions live
// in a NATS KV bucket shared by every replica.
package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/hashid"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/console/internal/auth"
	"github.com/apitosms/apitosms/services/console/internal/store"
	"github.com/apitosms/apitosms/services/console/internal/web"
)

// Config holds the console's settings.
type Config struct {
	PublicURL      string        // APITOSMS_PUBLIC_URL: invite links; https makes cookies Secure
	AdminToken     string        // APITOSMS_ADMIN_TOKEN: operator sign-in and the invite endpoint (a secret)
	SessionTTL     time.Duration // APITOSMS_CONSOLE_SESSION_TTL: a session's lifetime from sign-in
	SignInAttempts int           // APITOSMS_CONSOLE_SIGNIN_ATTEMPTS: failed sign-ins per account per window (4x per address)
	ThrottleWindow time.Duration // APITOSMS_CONSOLE_THROTTLE_WINDOW
	InviteTTL      time.Duration // contract §14: 7 days
	APIURL         string        // APITOSMS_CONSOLE_API_URL: this server's public API (default: the public URL)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		PublicURL:      "http://localhost:8080",
		SessionTTL:     12 * time.Hour,
		SignInAttempts: 5,
		ThrottleWindow: 15 * time.Minute,
		InviteTTL:      7 * 24 * time.Hour,
	}
}

// LoadConfig reads APITOSMS_CONSOLE_* variables over the defaults.
func LoadConfig(r *config.Reader, c config.Common) Config {
	d := DefaultConfig()
	cfg := Config{
		PublicURL:      c.PublicURL,
		AdminToken:     c.AdminToken,
		SessionTTL:     r.Duration("APITOSMS_CONSOLE_SESSION_TTL", d.SessionTTL),
		SignInAttempts: r.IntMin("APITOSMS_CONSOLE_SIGNIN_ATTEMPTS", d.SignInAttempts, 1),
		ThrottleWindow: r.Duration("APITOSMS_CONSOLE_THROTTLE_WINDOW", d.ThrottleWindow),
		InviteTTL:      d.InviteTTL,
		APIURL:         r.String("APITOSMS_CONSOLE_API_URL", ""),
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = d.PublicURL
	}
	return cfg
}

// Deps are what the console runs on.
type Deps struct {
	Broker     *broker.Broker
	DB         *bun.DB // the console's own database
	Names      events.Names
	Replicas   int
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Service is a console replica.
type Service struct {
	cfg        Config
	deps       Deps
	store      *store.Store
	web        *web.Web
	rpcMetrics *rpc.Metrics
}

// New migrates the console's tables and opens its buckets; it starts
// nothing.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if deps.Broker == nil || deps.DB == nil {
		return nil, errors.New("console: broker and database required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	deps.Log = deps.Log.With("service", "console")
	d := DefaultConfig()
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = d.SessionTTL
	}
	if cfg.SignInAttempts < 1 {
		cfg.SignInAttempts = d.SignInAttempts
	}
	if cfg.ThrottleWindow <= 0 {
		cfg.ThrottleWindow = d.ThrottleWindow
	}
	if cfg.InviteTTL <= 0 {
		cfg.InviteTTL = d.InviteTTL
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = d.PublicURL
	}
	st := store.New(deps.DB)
	if err := st.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	js := deps.Broker.JS
	sessions, err := auth.OpenSessions(ctx, js, deps.Names.ConsoleSessionsBucket(), cfg.SessionTTL, deps.Replicas)
	if err != nil {
		return nil, err
	}
	throttle, err := auth.OpenThrottle(ctx, js, deps.Names.ConsoleThrottleBucket(), cfg.ThrottleWindow, deps.Replicas)
	if err != nil {
		return nil, err
	}
	sealer, err := auth.LoadSealer(ctx, js, deps.Names.KeysBucket(), deps.Replicas)
	if err != nil {
		return nil, err
	}
	hashes, err := hashid.Load(ctx, js, deps.Names.KeysBucket(), deps.Replicas)
	if err != nil {
		return nil, err
	}
	w, err := web.New(web.Config{PublicURL: cfg.PublicURL, AdminToken: cfg.AdminToken, InviteTTL: cfg.InviteTTL,
		SignInAttempts: cfg.SignInAttempts, APIURL: cfg.APIURL}, web.Deps{
		Conn: deps.Broker.Conn, Names: deps.Names, Store: st, Sessions: sessions, Throttle: throttle,
		Sealer: sealer, Hashes: hashes, JS: js, Log: deps.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	rm := rpc.NewMetrics(deps.Registerer, "console")
	return &Service{cfg: cfg, deps: deps, store: st, web: w, rpcMetrics: rm}, nil
}

// Run answers billing's invite requests (queue group console) until ctx is
// done; the pages are served by the process's HTTP server.
func (s *Service) Run(ctx context.Context) error {
	srv := rpc.NewServer(s.deps.Broker.Conn, events.GroupConsole, 4, s.rpcMetrics, s.deps.Log)
	if err := rpc.Handle(srv, s.deps.Names.ConsoleInvite(), "invite", s.web.Invite); err != nil {
		srv.Close(ctx)
		return err
	}
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	srv.Close(stop)
	return nil
}

// Ready reports whether the console's database answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// Routes mounts "/" and /console/....
func (s *Service) Routes(r fiber.Router) { s.web.Routes(r) }
