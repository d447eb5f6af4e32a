package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	json "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

	"github.com/apitosms/apitosms/libs/apperr"
)

// maxBufferedBody is the largest body fiber buffers; larger bodies are
// streamed to the handler (APK uploads), which enforces its own limit.
const maxBufferedBody = 8 << 20

// maxDrainBytes and drainTimeout bound how much of a body a handler left
// unread is read and dropped to keep the connection (net/http drains 256 KiB
// too); past either, the connection is closed instead.
const (
	maxDrainBytes = 256 << 10
	drainTimeout  = 5 * time.Second
)

// httpServer is the process's HTTP server: fiber, served through the
// framing guard (framing.go).
type httpServer struct {
	*fiber.App
	framing *framingMetrics
}

// Listener serves HTTP on ln until shutdown; every connection goes through
// the framing guard.
func (s *httpServer) Listener(ln net.Listener) error {
	return s.App.Listener(framingListener{Listener: ln, m: s.framing})
}

// newHTTP builds the one HTTP server of the process: health, readiness and
// metrics, plus the routes of every targeted service that serves HTTP.
func newHTTP(in *infra, svcs []service) *httpServer {
	routes := &routeTable{} // filled once every route is registered
	web := fiber.New(fiber.Config{
		AppName:               "apitosms",
		DisableStartupMessage: true,
		// Paths match exactly as documented: /Admin/v1/... or a trailing
		// slash must not walk around a proxy rule written for /admin/v1/.
		// (fiber matches the raw path: %-escapes and dot segments do not
		// match either.)
		CaseSensitive: true,
		StrictRouting: true,
		// A head the framing guard accepts always fits fasthttp's buffer.
		ReadBufferSize: maxHeadBytes,
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
		ErrorHandler:                 safeErrors(apperr.Handler(in.log), routes),
	})
	fm := newFramingMetrics(in.reg)
	srv := web.Server()
	// Requests fasthttp cannot parse: fiber's default answer repeats the
	// raw request (token in the path, admin bearer in the headers).
	srv.SecureErrorLogMessage = true
	srv.ErrorHandler = serverError
	srv.Handler = finishRequest(srv.Handler, fm)
	web.Use(observe(in.reg, in.log, routes), jsonCharset)
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
	mountOpenAPI(web)
	for _, s := range svcs {
		if r, ok := s.(router); ok {
			r.Routes(web)
		}
	}
	*routes = newRouteTable(web.GetRoutes(true))
	return &httpServer{App: web, framing: fm}
}

// finishRequest runs the fiber handler, then makes sure the connection is
// reusable: what the handler left of the request body (a refusal before
// reading it: 401, 402, 429, 413, a timeout) is drained, up to
// maxDrainBytes, or the connection is closed. Without it fasthttp would read
// the rest of the body as the next request.
func finishRequest(next fasthttp.RequestHandler, m *framingMetrics) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if methodKnown(ctx.Method()) {
			next(ctx)
		} else {
			// fiber answers these itself, in text/plain.
			writeError(ctx, errMethodNotImpl)
		}
		c, ok := ctx.Conn().(*framedConn)
		if !ok {
			// Served without the guard (fiber's app.Test): never reuse a
			// connection that carried a body.
			if ctx.Request.IsBodyStream() {
				ctx.SetConnectionClose()
			}
			return
		}
		closing := ctx.Response.ConnectionClose() || ctx.Request.Header.ConnectionClose()
		if !closing && c.fault == nil {
			closing = !c.drain(ctx, m)
		}
		if c.fault != nil {
			// The body broke the framing: that, not the handler's
			// answer, is what the client gets.
			writeError(ctx, c.fault)
			ctx.SetConnectionClose()
			return
		}
		if closing && c.requestPending() {
			c.lingerWanted.Store(true)
		}
	}
}

// drain reads and drops what is left of the request body; false means the
// connection must be closed (more than maxDrainBytes, too slow, broken).
func (c *framedConn) drain(ctx *fasthttp.RequestCtx, m *framingMetrics) bool {
	s := ctx.RequestBodyStream()
	if s == nil {
		// No body, or read whole through c.Body().
		if c.requestPending() {
			ctx.SetConnectionClose()
			m.closed.WithLabelValues("closed").Inc()
			return false
		}
		return true
	}
	c.draining, c.hitBoundary = true, false
	_ = c.Conn.SetReadDeadline(time.Now().Add(drainTimeout))
	n, err := io.CopyN(io.Discard, s, maxDrainBytes+1)
	c.draining = false
	if (errors.Is(err, io.EOF) || c.hitBoundary) && !c.requestPending() && c.fault == nil {
		if n > 0 {
			m.closed.WithLabelValues("drained").Inc()
		}
		return true
	}
	ctx.SetConnectionClose()
	m.closed.WithLabelValues("closed").Inc()
	return false
}

// serverError answers what fasthttp could not read as a request: a head the
// framing guard rejected, an over-long head, a timeout, a broken body. The
// answer never repeats the request; fasthttp closes the connection after it.
func serverError(ctx *fasthttp.RequestCtx, err error) {
	e := errMalformed
	c, _ := ctx.Conn().(*framedConn)
	var ne net.Error
	switch {
	case c != nil && c.fault != nil:
		e = c.fault
	case errors.As(err, new(*fasthttp.ErrSmallBuffer)):
		e = errHeadTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		e = errRequestTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = apperr.ErrBodyTooLarge
	}
	if c != nil {
		c.lingerWanted.Store(true)
	}
	writeError(ctx, e)
}

// writeError replaces the response with e in the contract's shape.
func writeError(ctx *fasthttp.RequestCtx, e *apperr.Error) {
	body, err := json.Marshal(e.Body())
	if err != nil {
		body = []byte(`{"error":"Internal server error","code":"internal"}`)
	}
	ctx.Response.Reset()
	ctx.SetStatusCode(e.Status)
	for k, v := range e.Headers {
		ctx.Response.Header.Set(k, v)
	}
	ctx.SetContentType(fiber.MIMEApplicationJSONCharsetUTF8)
	ctx.SetBody(body)
}

// safeErrors keeps fiber's own errors (unknown route, wrong method, ...) from
// reaching the client with their text, which fiber builds from the request
// ("Cannot GET /api/<token>/..."): each becomes a fixed sentence for its
// status. Every JSON error says its charset.
func safeErrors(next fiber.ErrorHandler, routes *routeTable) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var fe *fiber.Error
		if _, ok := apperr.As(err); !ok && errors.As(err, &fe) {
			err = fiberError(fe.Code)
			if fe.Code == http.StatusMethodNotAllowed {
				// RFC 9110 §15.5.6: a 405 lists the methods the resource has.
				err = apperr.ErrMethodNotAllowed.WithHeader(fiber.HeaderAllow, routes.allow(c.Path()))
			}
		}
		if herr := next(c, err); herr != nil {
			return herr
		}
		if string(c.Response().Header.ContentType()) == fiber.MIMEApplicationJSON {
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		}
		return nil
	}
}

// fiberError is the contract error for a status fiber produced.
func fiberError(status int) *apperr.Error {
	switch status {
	case http.StatusNotFound:
		return apperr.ErrNotFound
	case http.StatusMethodNotAllowed:
		return apperr.ErrMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		return apperr.ErrBodyTooLarge
	case http.StatusRequestTimeout:
		return errRequestTimeout
	case http.StatusRequestHeaderFieldsTooLarge:
		return errHeadTooLarge
	case http.StatusServiceUnavailable:
		return apperr.ErrUnavailable
	}
	if status >= 500 {
		return apperr.ErrInternal
	}
	return apperr.New(status, "bad_request", http.StatusText(status))
}

// methodKnown: the methods fiber routes (fiber.DefaultMethods).
func methodKnown(m []byte) bool {
	switch string(m) {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete,
		fiber.MethodConnect, fiber.MethodOptions, fiber.MethodTrace, fiber.MethodPatch:
		return true
	}
	return false
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
