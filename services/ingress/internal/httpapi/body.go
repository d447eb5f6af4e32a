package httpapi

import (
	"bytes"
	"io"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
)

// body returns the request body, refusing more than MaxBodyBytes without
// reading past the limit. The server streams large bodies (releases uploads
// need it), so the limit is enforced here.
func (a *API) body(c *fiber.Ctx) ([]byte, error) {
	limit := a.set.MaxBodyBytes
	if n := c.Request().Header.ContentLength(); n > limit {
		// The rest of the body stays unread: the connection cannot be reused.
		c.Context().SetConnectionClose()
		return nil, apperr.ErrBodyTooLarge
	}
	stream := c.Context().RequestBodyStream()
	if stream == nil {
		b := c.Body()
		if len(b) > limit {
			return nil, apperr.ErrBodyTooLarge
		}
		return b, nil
	}
	var buf bytes.Buffer
	if n := c.Request().Header.ContentLength(); n > 0 {
		// One allocation of the announced size (plus ReadFrom's minimum
		// free space, so reading EOF does not grow it) instead of doubling.
		buf.Grow(n + bytes.MinRead)
	}
	n, err := io.Copy(&buf, io.LimitReader(stream, int64(limit)+1))
	if err != nil {
		return nil, apperr.ErrInvalidJSON
	}
	if n > int64(limit) {
		c.Context().SetConnectionClose()
		return nil, apperr.ErrBodyTooLarge
	}
	return buf.Bytes(), nil
}
