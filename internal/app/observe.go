package app

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/apperr"
)

// HeaderRequestID carries a request's id: a sane incoming one is kept (so a
// proxy's or client's id follows the request), otherwise one is generated;
// it is echoed on every response and written in the access log line.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds an accepted incoming request id.
const maxRequestIDLen = 128

// observe is the HTTP observability middleware: it gives the request an id,
// counts it by route template, method and exact status code, times it, and
// writes one access log line. Never the raw path: it holds the API token.
// Status codes are a bounded set (the contract's, plus fiber's own few), so
// the label stays small.
func observe(reg prometheus.Registerer, log *slog.Logger, routes *routeTable) fiber.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apitosms_http_requests_total",
		Help: "HTTP requests by route template, method and status code.",
	}, []string{"route", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "apitosms_http_request_duration_seconds",
		Help:    "HTTP request latency by route template.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
	}, []string{"route", "method"})
	inflight := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "apitosms_http_requests_in_flight",
		Help: "HTTP requests being served.",
	})
	reg.MustRegister(requests, duration, inflight)
	return func(c *fiber.Ctx) error {
		start := time.Now()
		inflight.Inc()
		defer inflight.Dec()
		id := requestID(c.Get(HeaderRequestID))
		c.Set(HeaderRequestID, id)
		err := c.Next()
		status := c.Response().StatusCode()
		if err != nil {
			status = errorStatus(err)
		}
		// fiber's strings point into reused buffers: copy before keeping them.
		method := knownMethod(c.Method())
		route := c.Route().Path
		switch {
		case status == fiber.StatusMethodNotAllowed:
			// fiber answers 405 from its catch-all: name the route whose
			// path matched, so a client using the wrong method is visible.
			route = routes.template(c.Path())
		case status == fiber.StatusNotFound && route == "/":
			route = "unmatched"
		default:
			route = strings.Clone(route)
		}
		elapsed := time.Since(start)
		requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		log.LogAttrs(c.UserContext(), level, "http request",
			slog.String("request_id", id),
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			// Header lengths: reading Body() would buffer a streamed upload
			// or download.
			slog.Int("bytes_in", max(c.Request().Header.ContentLength(), 0)),
			slog.Int("bytes_out", max(c.Response().Header.ContentLength(), 0)),
		)
		return err
	}
}

// errorStatus is the status the error handler will answer err with.
func errorStatus(err error) int {
	if e, ok := apperr.As(err); ok {
		return e.Status
	}
	if fe := (*fiber.Error)(nil); errors.As(err, &fe) {
		return fe.Code
	}
	return fiber.StatusInternalServerError
}

// requestID returns in when it is a sane id (1-128 characters of
// [A-Za-z0-9._:-]), else a fresh random one (16 hex characters).
func requestID(in string) string {
	if n := len(in); n > 0 && n <= maxRequestIDLen {
		ok := true
		for i := 0; i < n && ok; i++ {
			b := in[i]
			ok = b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
				b == '-' || b == '_' || b == '.' || b == ':'
		}
		if ok {
			return strings.Clone(in)
		}
	}
	const hexdigits = "0123456789abcdef"
	var buf [16]byte
	v := rand.Uint64() //nolint:gosec // G404: a correlation id, not a secret
	for i := range buf {
		buf[i] = hexdigits[v>>(4*i)&0xf]
	}
	return string(buf[:])
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

// matchSegments reports whether path segments fit a fiber pattern (":name"
// one segment, "*" or "+" the rest) and how many parameters it used.
func matchSegments(pattern, segs []string) (int, bool) {
	params := 0
	for i, p := range pattern {
		if p == "*" || p == "+" {
			return params + 1, p == "*" || i < len(segs)
		}
		if i >= len(segs) {
			return 0, false
		}
		if strings.HasPrefix(p, ":") {
			if segs[i] == "" {
				return 0, false
			}
			params++
			continue
		}
		if p != segs[i] {
			return 0, false
		}
	}
	return params, len(pattern) == len(segs)
}
