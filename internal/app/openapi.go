package app

import (
	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/api"
)

// mountOpenAPI serves the OpenAPI document the binary was built with at
// GET /openapi.yaml (application/yaml, RFC 9512), with an ETag so tools can
// poll it cheaply.
func mountOpenAPI(r fiber.Router) {
	r.Get("/openapi.yaml", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderETag, api.ETag)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		if c.Get(fiber.HeaderIfNoneMatch) == api.ETag {
			return c.SendStatus(fiber.StatusNotModified)
		}
		c.Set(fiber.HeaderContentType, "application/yaml")
		return c.Send(api.OpenAPI())
	})
}
