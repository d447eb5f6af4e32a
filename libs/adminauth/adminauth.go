// Package adminauth guards the operator API (contract §6): a request must
// carry "Authorization: Bearer <admin token>"; anything else is 401. With no
// admin token configured every request is refused.
package adminauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
)

// Middleware returns a fiber handler that lets through only requests bearing
// adminToken, compared in constant time.
func Middleware(adminToken string) fiber.Handler {
	want := sha256.Sum256([]byte(adminToken))
	return func(c *fiber.Ctx) error {
		if adminToken == "" {
			return apperr.ErrUnauthorized
		}
		h := c.Get(fiber.HeaderAuthorization)
		tok, ok := strings.CutPrefix(h, "Bearer ")
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if !ok || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
			return apperr.ErrUnauthorized
		}
		return c.Next()
	}
}
