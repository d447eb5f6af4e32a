package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
)

const (
	defaultLimit = 20
	maxLimit     = 200
)

var errInvalidLimit = apperr.New(http.StatusBadRequest, "invalid_limit", "Invalid limit")

// parseLimit reads ?limit=: default 20, above 200 means 200, anything that
// is not an integer of at least 1 is invalid.
func parseLimit(c *fiber.Ctx) (int, error) {
	if !c.Context().QueryArgs().Has("limit") {
		return defaultLimit, nil
	}
	s := c.Query("limit")
	if s == "" {
		return 0, errInvalidLimit
	}
	digits := s
	if digits[0] == '+' || digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" {
		return 0, errInvalidLimit
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, errInvalidLimit
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		// Only an integer too large to represent gets here.
		if s[0] == '-' {
			return 0, errInvalidLimit
		}
		return maxLimit, nil
	}
	if n < 1 {
		return 0, errInvalidLimit
	}
	return min(n, maxLimit), nil
}

// message is one SMS handed to a phone.
type message struct {
	Phone string `json:"phone"`
	Text  string `json:"text"`
	Hash  string `json:"hash"`
}

// getMessages hands out the oldest new messages (contract §3).
func (a *API) getMessages(c *fiber.Ctx) error {
	ctx, cancel := a.timeout(c)
	defer cancel()
	auth, err := a.authenticate(ctx, c)
	if err != nil {
		return err
	}
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	res, err := rpc.Call[events.ClaimRequest, events.ClaimReply](ctx, a.nc, a.names.QueueClaim(),
		events.ClaimRequest{AccountID: auth.AccountID, Limit: limit})
	if err != nil {
		return err
	}
	out := make([]message, len(res.Messages))
	for i, m := range res.Messages {
		out[i] = message{Phone: m.Phone, Text: m.Text, Hash: a.hashes.Hash(m.Pos)}
	}
	a.m.claimed.Add(float64(len(out)))
	return c.JSON(out)
}
