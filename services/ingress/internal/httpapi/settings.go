package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
)

// Per-token lease settings (contract §12): GET and PATCH
// /api/{token}/settings, both counted in the read window (Part 2's rule:
// the section names no other). The queue service stores and validates them;
// ingress only checks the body's shape.

// Errors of the settings endpoint (the queue adds one per field's range).
var (
	errSettingsLease    = apperr.New(http.StatusBadRequest, "invalid_settings", "Invalid leaseSeconds (0, or 60-86400)")
	errSettingsExpiry   = apperr.New(http.StatusBadRequest, "invalid_settings", `Invalid onLeaseExpiry ("requeue" or "expire")`)
	errSettingsAttempts = apperr.New(http.StatusBadRequest, "invalid_settings", "Invalid maxAttempts (1-100)")
)

func (a *API) settingsRoutes(r fiber.Router) {
	r.Get("/api/:token/settings", a.getSettings)
	r.Patch("/api/:token/settings", a.patchSettings)
}

// getSettings answers the token's settings (the defaults if never changed).
func (a *API) getSettings(c *fiber.Ctx) error {
	ctx, cancel := a.timeout(c)
	defer cancel()
	auth, err := a.authenticateRead(ctx, c)
	if err != nil {
		return err
	}
	res, err := rpc.Call[events.SettingsGetRequest, events.Settings](ctx, a.nc, a.names.QueueSettingsGet(),
		events.SettingsGetRequest{AccountID: auth.AccountID})
	if err != nil {
		return err
	}
	return c.JSON(res)
}

// patchSettings changes the fields given and answers the settings as
// stored. A body that is not a JSON object is 400 invalid_json; a field of
// the wrong type or out of range is 400 invalid_settings naming it; unknown
// fields are ignored.
func (a *API) patchSettings(c *fiber.Ctx) error {
	ctx, cancel := a.timeout(c)
	defer cancel()
	auth, err := a.authenticateRead(ctx, c)
	if err != nil {
		return err
	}
	raw, err := a.body(c)
	if err != nil {
		return err
	}
	req, err := parseSettings(raw)
	if err != nil {
		return err
	}
	req.AccountID = auth.AccountID
	res, err := rpc.Call[events.SettingsSetRequest, events.Settings](ctx, a.nc, a.names.QueueSettingsSet(), req)
	if err != nil {
		return err
	}
	return c.JSON(res)
}

// parseSettings reads a PATCH body: an object whose known fields, when
// present and not null, have the right JSON type.
func parseSettings(raw []byte) (events.SettingsSetRequest, error) {
	var req events.SettingsSetRequest
	trimmed := bytes.TrimSpace(raw)
	var body struct {
		LeaseSeconds  json.RawMessage `json:"leaseSeconds"`
		OnLeaseExpiry json.RawMessage `json:"onLeaseExpiry"`
		MaxAttempts   json.RawMessage `json:"maxAttempts"`
	}
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &body) != nil {
		return req, apperr.ErrInvalidJSON
	}
	if !absentField(body.LeaseSeconds) {
		var v int
		if json.Unmarshal(body.LeaseSeconds, &v) != nil {
			return req, errSettingsLease
		}
		req.LeaseSeconds = &v
	}
	if !absentField(body.OnLeaseExpiry) {
		var v string
		if json.Unmarshal(body.OnLeaseExpiry, &v) != nil {
			return req, errSettingsExpiry
		}
		req.OnLeaseExpiry = &v
	}
	if !absentField(body.MaxAttempts) {
		var v int
		if json.Unmarshal(body.MaxAttempts, &v) != nil {
			return req, errSettingsAttempts
		}
		req.MaxAttempts = &v
	}
	return req, nil
}

// absentField reports whether a JSON field was left out or null.
func absentField(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}
