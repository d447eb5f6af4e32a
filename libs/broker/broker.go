// Package broker connects a process to NATS JetStream: to an external cluster
// when a URL is configured, otherwise to a NATS server embedded in the process
// with JetStream on disk. It is the one switch point between the two.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config selects the broker.
type Config struct {
	URL     string // nats://...; empty starts an embedded server
	DataDir string // embedded server's JetStream store lives in DataDir/nats
	Name    string // client connection name
	// Listen makes the embedded server accept TCP clients on ListenHost:ListenPort
	// (port -1 picks a free one); by default it is reachable only in process.
	Listen     bool
	ListenHost string
	ListenPort int
	// CallTimeout bounds one attempt of every broker call of the process
	// (see call.go); zero keeps DefaultCallTimeout.
	CallTimeout time.Duration
}

// Broker is a live connection, and the embedded server behind it if any.
type Broker struct {
	Conn   *nats.Conn
	JS     jetstream.JetStream
	server *server.Server
}

// Open connects according to cfg. With no URL it starts an embedded server
// whose file store fsyncs every write, so an acknowledged publish is on disk.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Broker, error) {
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
	}
	if cfg.CallTimeout > 0 {
		SetCallTimeout(cfg.CallTimeout)
	}
	b := &Broker{}
	url := cfg.URL
	if url == "" {
		srv, err := startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		b.server = srv
		if cfg.Listen {
			url = srv.ClientURL()
		} else {
			opts = append(opts, nats.InProcessServer(srv))
		}
		log.Info("embedded nats started", "store", filepath.Join(cfg.DataDir, "nats"), "url", url)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	b.Conn = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.JS = js
	// A cluster that is starting too answers "temporarily unavailable"
	// until it has elected a meta leader: wait for it (up to ctx).
	if err := Ensure(ctx, "jetstream not available", func(ctx context.Context) error {
		_, err := js.AccountInfo(ctx)
		return err
	}); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func startEmbedded(cfg Config) (*server.Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embedded nats needs a data dir")
	}
	opts := &server.Options{
		ServerName: "apitosms-embedded",
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		// Every write is fsynced before it is acknowledged.
		SyncAlways: true,
		MaxPayload: 16 << 20,
		NoSigs:     true,
		DontListen: !cfg.Listen,
		Host:       "127.0.0.1",
		Port:       -1,
	}
	if cfg.Listen {
		if cfg.ListenHost != "" {
			opts.Host = cfg.ListenHost
		}
		if cfg.ListenPort != 0 {
			opts.Port = cfg.ListenPort
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats did not become ready")
	}
	return srv, nil
}

// Embedded reports whether the broker runs inside this process.
func (b *Broker) Embedded() bool { return b.server != nil }

// Ready reports whether the connection is up and JetStream answers.
func (b *Broker) Ready(ctx context.Context) error {
	if b.Conn == nil || !b.Conn.IsConnected() {
		return errors.New("nats not connected")
	}
	ctx, cancel := Bound(ctx)
	defer cancel()
	_, err := b.JS.AccountInfo(ctx)
	return err
}

// Close drains the connection (pending publishes and replies are flushed),
// then stops the embedded server, if any.
func (b *Broker) Close() {
	if b.Conn != nil {
		done := make(chan struct{})
		b.Conn.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err := b.Conn.Drain(); err == nil {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
		}
		b.Conn.Close()
	}
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
}
