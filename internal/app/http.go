package app

import (
	"context"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
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
	web.Use(httpMetrics(in.reg), jsonCharset)
	web.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	web.Get("/readyz", func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
		defer cancel()
		if err := in.broker.Ready(ctx); err != nil {
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "error": "broker unreachable"})
		}
		for _, s := range svcs {
			if err := s.Ready(ctx); err != nil {
				return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "error": "database unreachable"})
			}
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})
	web.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(in.reg, promhttp.HandlerOpts{})))
	mountOpenAPI(web)
	for _, s := range svcs {
		if r, ok := s.(router); ok {
			r.Routes(web)
		}
	}
	return web
}

// httpMetrics counts requests by route template (never the raw path, which
// holds the token) and status class.
func httpMetrics(reg prometheus.Registerer) fiber.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apitosms_http_requests_total",
		Help: "HTTP requests by route template, method and status class.",
	}, []string{"route", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "apitosms_http_request_duration_seconds",
		Help:    "HTTP request latency by route template.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
	}, []string{"route", "method"})
	reg.MustRegister(requests, duration)
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		status := c.Response().StatusCode()
		if err != nil {
			if e, ok := apperr.As(err); ok {
				status = e.Status
			} else if fe, ok := err.(*fiber.Error); ok {
				status = fe.Code
			} else {
				status = fiber.StatusInternalServerError
			}
		}
		route := c.Route().Path
		if status == fiber.StatusNotFound && route == "/" {
			route = "unmatched"
		}
		// fiber's strings point into reused buffers: copy before keeping them.
		method := knownMethod(c.Method())
		route = strings.Clone(route)
		requests.WithLabelValues(route, method, strconv.Itoa(status/100)+"xx").Inc()
		duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		return err
	}
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

// knownMethod bounds the method label.
func knownMethod(m string) string {
	switch m {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete,
		fiber.MethodPatch, fiber.MethodOptions:
		return strings.Clone(m)
	}
	return "other"
}
