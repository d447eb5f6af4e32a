// Package httpapi serves the receiving endpoints of contract §13:
// POST /hooks/shopify/{id} and POST /hooks/woocommerce/{id}. A delivery is
// verified (HMAC-SHA256 of the raw body under the store's secret, compared
// in constant time), stored in the store-hooks stream, and only then
// answered 200; the stores service's consumer processes it after.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/keys"
	"github.com/apitosms/apitosms/services/stores/internal/metrics"
	"github.com/apitosms/apitosms/services/stores/internal/orders"
	"github.com/apitosms/apitosms/services/stores/internal/rpcapi"
	"github.com/apitosms/apitosms/services/stores/internal/secret"
	"github.com/apitosms/apitosms/services/stores/internal/store"
)

var (
	errBadSignature = apperr.New(http.StatusUnauthorized, "invalid_signature", "Invalid or missing webhook signature")
	errTooLarge     = apperr.New(http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large")
)

// wooPing is WooCommerce's creation ping: an unsigned form body.
var wooPing = regexp.MustCompile(`^webhook_id=[0-9]{1,20}$`)

// Hooks receives shop deliveries.
type Hooks struct {
	st      *store.Store
	sealer  *keys.Sealer
	js      jetstream.JetStream
	names   events.Names
	m       *metrics.Metrics
	log     *slog.Logger
	maxBody int
	timeout time.Duration

	mu     sync.Mutex
	cache  map[string]cached // store id -> connection, for cacheTTL
	shared chan pendingHook  // deliveries waiting for a shared publish (coalesce.go)
}

// cacheTTL bounds how long a replica may keep verifying with a store's
// previous secret, or accept deliveries for a store another replica
// deleted (the consumer checks again and sends nothing for it). Changes
// made through this process are seen at once (Forget).
const cacheTTL = 5 * time.Second

type cached struct {
	conn   store.Conn
	secret string
	until  time.Time
}

// New returns the receiving endpoints; maxBody bounds a delivery (the
// broker's max payload less room for headers).
func New(st *store.Store, sealer *keys.Sealer, js jetstream.JetStream, names events.Names, m *metrics.Metrics,
	log *slog.Logger, maxBody int) *Hooks {
	return &Hooks{st: st, sealer: sealer, js: js, names: names, m: m, log: log, maxBody: maxBody,
		timeout: 900 * time.Millisecond, cache: map[string]cached{}, shared: make(chan pendingHook, 4096)}
}

// Forget drops a store from the cache (it changed or was deleted).
func (h *Hooks) Forget(id string) {
	h.mu.Lock()
	delete(h.cache, id)
	h.mu.Unlock()
}

// lookup returns a store and its opened secret (store.ErrNotFound).
func (h *Hooks) lookup(ctx context.Context, id string) (store.Conn, string, error) {
	now := time.Now()
	h.mu.Lock()
	c, ok := h.cache[id]
	h.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.conn, c.secret, nil
	}
	conn, err := h.st.ByID(ctx, id)
	if err != nil {
		return conn, "", err
	}
	sec, err := h.sealer.Open(conn.Secret, nil)
	if err != nil {
		return conn, "", err
	}
	h.mu.Lock()
	if len(h.cache) > 100000 {
		clear(h.cache)
	}
	h.cache[id] = cached{conn: conn, secret: sec, until: now.Add(cacheTTL)}
	h.mu.Unlock()
	return conn, sec, nil
}

// Routes mounts the endpoints.
func (h *Hooks) Routes(r fiber.Router) {
	r.Post("/hooks/shopify/:id", func(c *fiber.Ctx) error {
		return h.receive(c, orders.Shopify, "X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Webhook-Id")
	})
	r.Post("/hooks/woocommerce/:id", func(c *fiber.Ctx) error {
		return h.receive(c, orders.WooCommerce, "X-WC-Webhook-Signature", "X-WC-Webhook-Topic", "X-WC-Webhook-Delivery-ID")
	})
}

func (h *Hooks) receive(c *fiber.Ctx, platform, sigHeader, topicHeader, idHeader string) error {
	id := c.Params("id")
	if !rpcapi.WellFormedID(id) {
		h.m.Received.WithLabelValues(platform, "unknown_store").Inc()
		return rpcapi.ErrNotFound
	}
	id = string([]byte(id)) // out of fiber's buffers
	// The answer is due within 1 s (§13): bound the work behind it.
	ctx, cancel := context.WithTimeout(c.UserContext(), h.timeout)
	defer cancel()
	conn, sec, err := h.lookup(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && conn.Platform != platform) {
		h.m.Received.WithLabelValues(platform, "unknown_store").Inc()
		return rpcapi.ErrNotFound
	}
	if err != nil {
		h.m.Received.WithLabelValues(platform, "error").Inc()
		h.log.Error("store lookup", "store", id, "err", err)
		return apperr.ErrUnavailable
	}
	body, err := readBody(c, h.maxBody)
	if err != nil {
		return err
	}
	sig := c.Get(sigHeader)
	// WooCommerce's creation ping (unsigned in the versions we know; a
	// signed one is answered the same): nothing to store.
	if platform == orders.WooCommerce && wooPing.Match(body) {
		h.m.Received.WithLabelValues(platform, "ping").Inc()
		return c.JSON(fiber.Map{"ok": true})
	}
	if sig == "" || !secret.Verify(sec, body, sig) {
		h.m.Received.WithLabelValues(platform, "bad_signature").Inc()
		return errBadSignature
	}
	delivery := c.Get(idHeader)
	if delivery == "" || len(delivery) > 200 {
		// No (usable) delivery id: the body's digest stands in, so a
		// resend of the same body still dedupes.
		sum := sha256.Sum256(append([]byte(c.Get(topicHeader)+"\n"), body...))
		delivery = "sha256:" + hex.EncodeToString(sum[:16])
	}
	dup, err := h.store(ctx, events.StoreHook{
		StoreID: id, Platform: platform, Topic: clip(c.Get(topicHeader), 100), DeliveryID: delivery,
		ReceivedAt: time.Now(), Body: append([]byte(nil), body...),
	})
	if err != nil {
		h.m.Received.WithLabelValues(platform, "error").Inc()
		h.log.Error("store hook not stored", "err", err)
		return apperr.ErrUnavailable
	}
	if dup {
		// A platform retry the stream already holds (its duplicate window):
		// logged here, since no second message reaches the consumer.
		h.m.Received.WithLabelValues(platform, "duplicate").Inc()
		h.m.Decisions.WithLabelValues("duplicate").Inc()
		if err := h.st.AddLog(ctx, store.LogEntry{StoreID: id, DeliveryID: delivery, Topic: clip(c.Get(topicHeader), 100),
			Decision: "duplicate", Reason: "delivery already received", AtMs: store.Ms(time.Now())}); err != nil {
			h.log.Warn("log duplicate", "err", err)
		}
		return c.JSON(fiber.Map{"ok": true})
	}
	h.m.Received.WithLabelValues(platform, "stored").Inc()
	return c.JSON(fiber.Map{"ok": true})
}

// readBody returns the raw body (it is what is signed), refusing more than
// limit without reading past it: the server streams large bodies.
func readBody(c *fiber.Ctx, limit int) ([]byte, error) {
	if n := c.Request().Header.ContentLength(); n > limit {
		c.Context().SetConnectionClose()
		return nil, errTooLarge
	}
	stream := c.Context().RequestBodyStream()
	if stream == nil {
		b := c.Body()
		if len(b) > limit {
			return nil, errTooLarge
		}
		return b, nil
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(stream, int64(limit)+1))
	if err != nil {
		return nil, apperr.New(http.StatusBadRequest, "invalid_body", "Request body could not be read")
	}
	if n > int64(limit) {
		c.Context().SetConnectionClose()
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

func clip(s string, n int) string {
	s = string([]byte(s))
	if len(s) > n {
		return s[:n]
	}
	return s
}
