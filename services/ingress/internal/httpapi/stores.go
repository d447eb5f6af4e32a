package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
)

// The store connection and opt-out endpoints (contract §13) are answered by
// the stores service; ingress authenticates the token, counts the request in
// the account's read window and forwards the body as sent, with the account
// id, over request/reply. The stores service validates it and answers the
// contract's body, which is sent on as is.

// Bounds of a forwarded body: a store (templates included), and an opt-out
// import (JSON or CSV), both well under the broker's max payload.
const (
	maxStoreBody  = 64 << 10
	maxOptOutBody = 512 << 10
)

func (a *API) storeRoutes(r fiber.Router) {
	r.Post("/api/:token/stores", a.storeCall(http.StatusCreated, a.names.StoresCreate, maxStoreBody))
	r.Get("/api/:token/stores", a.storeCall(http.StatusOK, a.names.StoresList, 0))
	r.Get("/api/:token/stores/:id", a.storeCall(http.StatusOK, a.names.StoresGet, 0))
	r.Patch("/api/:token/stores/:id", a.storeCall(http.StatusOK, a.names.StoresUpdate, maxStoreBody))
	r.Delete("/api/:token/stores/:id", a.storeCall(http.StatusNoContent, a.names.StoresDelete, 0))
	r.Post("/api/:token/stores/:id/preview", a.storeCall(http.StatusOK, a.names.StoresPreview, maxStoreBody))
	r.Get("/api/:token/stores/:id/log", a.storeCall(http.StatusOK, a.names.StoresLog, 0))
	r.Get("/api/:token/opt-outs", a.storeCall(http.StatusOK, a.names.OptOutsList, 0))
	r.Post("/api/:token/opt-outs", a.storeCall(http.StatusOK, a.names.OptOutsAdd, maxOptOutBody))
	r.Delete("/api/:token/opt-outs", a.storeCall(http.StatusOK, a.names.OptOutsRemove, maxOptOutBody))
}

// storeCall returns the handler forwarding to subject; maxBody > 0 reads
// and forwards the body (at most maxBody bytes).
func (a *API) storeCall(status int, subject func() string, maxBody int) fiber.Handler {
	subj := subject()
	return func(c *fiber.Ctx) error {
		ctx, cancel := a.timeout(c)
		defer cancel()
		auth, err := a.authenticateRead(ctx, c)
		if err != nil {
			return err
		}
		req := events.StoreRequest{AccountID: auth.AccountID, ID: string([]byte(c.Params("id")))}
		if maxBody > 0 {
			raw, err := a.body(c)
			if err != nil {
				return err
			}
			if len(raw) > maxBody {
				return apperr.ErrBodyTooLarge
			}
			req.Body = append([]byte(nil), raw...)
			req.ContentType = string([]byte(c.Get(fiber.HeaderContentType)))
		}
		if c.Method() == fiber.MethodGet {
			limit, err := parseLimit(c)
			if err != nil {
				return err
			}
			req.Limit = limit
			req.Cursor = string([]byte(c.Query("cursor")))
		}
		resp, err := rpc.Call[events.StoreRequest, json.RawMessage](ctx, a.nc, subj, req)
		if err != nil {
			return err
		}
		if status == http.StatusNoContent {
			return c.SendStatus(status)
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		return c.Status(status).Send(resp)
	}
}
