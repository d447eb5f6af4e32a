package apperr

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler is the fiber ErrorHandler of every HTTP service: an *Error becomes
// its contract body; fiber's own errors (404 route, 413 body) are mapped to
// the same shape; a dependency that did not answer (Unavailable) is a 503
// with Retry-After; anything else is a bug, logged and answered as a plain
// 500, without its text.
func Handler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		e, ok := As(err)
		if !ok {
			var fe *fiber.Error
			switch {
			case errors.As(err, &fe) && fe.Code == http.StatusRequestEntityTooLarge:
				e = ErrBodyTooLarge
			case errors.As(err, &fe) && fe.Code == http.StatusNotFound:
				e = ErrNotFound
			case errors.As(err, &fe) && fe.Code == http.StatusMethodNotAllowed:
				e = ErrMethodNotAllowed
			case errors.As(err, &fe) && fe.Code < 500:
				e = New(fe.Code, "bad_request", fe.Message)
			case Unavailable(err):
				log.Warn("dependency unavailable", "route", c.Route().Path, "err", err)
				e = ErrUnavailable
			case brokerUnavailable(err):
				// NATS or a stream leader is away (a node restarting, an
				// election): the client should retry, as for a timeout.
				log.Warn("broker unavailable", "route", c.Route().Path, "err", err)
				e = ErrUnavailable
			default:
				log.Error("internal error", "route", c.Route().Path, "method", c.Method(), "err", err)
				e = ErrInternal
			}
		}
		for k, v := range e.Headers {
			c.Set(k, v)
		}
		if e.Status == http.StatusServiceUnavailable && e.Headers["Retry-After"] == "" {
			c.Set("Retry-After", RetryAfterSeconds) // every 503 tells when to come back
		}
		return c.Status(e.Status).JSON(e.Body())
	}
}

// brokerUnavailable reports whether err means NATS or JetStream did not
// answer (a transient state, not a bug).
func brokerUnavailable(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrDisconnected)
}
