package app

import (
	"context"
	"time"

	json "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apitosms/apitosms/libs/apperr"
)

// maxBufferedBody is the largest body fiber buffers; larger bodies are
// streamed to the handler (APK uploads), which enforces its own limit.
const maxBufferedBody = 8 << 20

// newHTTP builds the one HTTP server of the process: health, readiness and
// metrics, plus the routes of every targeted service that serves HTTP.
func newHTTP(in *infra, svcs []service) *fiber.App {
	web := fiber.New(fiber.Config{
		AppName:               "apitosms",
		DisableStartupMessage: true,
		// goccy/go-json: encoding/json's output, several times faster (the
		// encoder fiber's documentation suggests); get_messages answers are
		// large.
		JSONEncoder:       json.Marshal,
		JSONDecoder:       json.Unmarshal,
		StreamRequestBody: true,
		// Multipart uploads (APKs) are parsed by the handler as a stream;
		// fasthttp's own pre-parsing would buffer them first.
		DisablePreParseMultipartForm: true,
		BodyLimit:                    maxBufferedBody,
		ReadTimeout:                  60 * time.Second,
		IdleTimeout:                  120 * time.Second,
		ErrorHandler:                 apperr.Handler(in.log),
	})
	web.Use(observe(in.reg, in.log), jsonCharset)
	web.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	web.Get("/readyz", func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
		defer cancel()
		if err := in.broker.Ready(ctx); err != nil {
			in.log.Debug("not ready: broker", "err", err)
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "error": "broker unreachable"})
		}
		for _, s := range svcs {
			if err := s.Ready(ctx); err != nil {
				in.log.Debug("not ready: database", "err", err)
				return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "error": "database unreachable"})
			}
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})
	web.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(in.reg, promhttp.HandlerOpts{})))
	for _, s := range svcs {
		if r, ok := s.(router); ok {
			r.Routes(web)
		}
	}
	return web
}

// jsonCharset makes every JSON response say its charset, as the contract
// requires, whichever handler (or the error handler) wrote it.
func jsonCharset(c *fiber.Ctx) error {
	err := c.Next()
	if err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			return herr
		}
	}
	if string(c.Response().Header.ContentType()) == fiber.MIMEApplicationJSON {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	}
	return nil
}
