package broker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/broker"
	"github.com/apitosms/apitosms/libs/testkit"
)

func TestEmbeddedPersistsAcknowledgedPublish(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	open := func() *broker.Broker {
		b, err := broker.Open(ctx, broker.Config{DataDir: dir, Name: "test"}, testkit.Logger(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return b
	}
	b := open()
	if !b.Embedded() {
		t.Error("Embedded() = false with no URL")
	}
	if err := b.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if _, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{
		Name: "DURABLE", Subjects: []string{"durable.>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatal(err)
	}
	ack, err := b.JS.Publish(ctx, "durable.x", []byte("hello"))
	if err != nil {
		t.Fatalf("publish not acknowledged: %v", err)
	}
	b.Close()
	if _, err := os.Stat(filepath.Join(dir, "nats", "jetstream")); err != nil {
		t.Errorf("store not under DataDir/nats: %v", err)
	}

	b = open()
	defer b.Close()
	s, err := b.JS.Stream(ctx, "DURABLE")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	m, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("message after restart: %v", err)
	}
	if string(m.Data) != "hello" || m.Subject != "durable.x" {
		t.Errorf("message after restart = %s %q", m.Subject, m.Data)
	}
}

func TestEmbeddedNeedsDataDir(t *testing.T) {
	if _, err := broker.Open(context.Background(), broker.Config{Name: "test"}, testkit.Discard); err == nil {
		t.Fatal("Open with neither URL nor DataDir: want error")
	}
}

func TestExternalURL(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		br, err := broker.Open(ctx, broker.Config{URL: b.NATSURL, Name: "test"}, testkit.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		if br.Embedded() {
			t.Error("Embedded() = true with a URL")
		}
		if err := br.Ready(ctx); err != nil {
			t.Errorf("Ready: %v", err)
		}
		br.Close()
		if err := br.Ready(ctx); err == nil {
			t.Error("Ready after Close: want error")
		}
	})
}
