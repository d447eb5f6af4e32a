// Package httpapi is billing's part of the operator API (contract §6):
// accounts, their subscriptions and their API tokens, under /admin/v1.
package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/adminauth"
	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/libs/token"
	"github.com/apitosms/apitosms/services/billing/internal/changes"
	"github.com/apitosms/apitosms/services/billing/internal/domain"
	"github.com/apitosms/apitosms/services/billing/internal/store"
)

// Limits of the operator's input.
const (
	maxNameLen  = 200
	maxEmailLen = 254
	maxPlanLen  = 100
)

// Admin serves the operator endpoints.
type Admin struct {
	store   *store.Store
	changed *changes.Notifier // tells ingress caches what changed
	invite  Inviter
	now     func() time.Time
}

// Inviter makes a console invite link for an account (contract §14).
type Inviter func(ctx context.Context, account int64, email string) (events.InviteReply, error)

// New returns the operator endpoints over st; changed (may be nil) learns
// every account whose token lookup a request changed; invites are made by
// invite.
func New(st *store.Store, changed *changes.Notifier, invite Inviter) *Admin {
	return &Admin{store: st, changed: changed, invite: invite, now: time.Now}
}

// Routes mounts the endpoints under /admin/v1, guarded by the admin token
// (empty: every request is refused with 401).
func (a *Admin) Routes(r fiber.Router, adminToken string) {
	g := r.Group("/admin/v1/accounts", adminauth.Middleware(adminToken))
	g.Post("", a.createAccount) // "" is /admin/v1/accounts itself; "/" would add a slash, which strict routing keeps
	g.Get("", a.listAccounts)
	g.Get("/:id", a.getAccount)
	g.Put("/:id/subscription", a.putSubscription)
	g.Delete("/:id/subscription", a.deleteSubscription)
	g.Post("/:id/rotate-token", a.rotateToken)
	g.Post("/:id/invite", a.inviteAccount)
}

type accountJSON struct {
	ID        int64          `json:"id"`
	Name      string         `json:"name"`
	Email     string         `json:"email"`
	APIToken  string         `json:"apiToken,omitempty"`
	CreatedAt timestamp.Time `json:"createdAt"`
}

type accountViewJSON struct {
	accountJSON
	Subscription *subscriptionJSON `json:"subscription"`
	Month        string            `json:"month"`
	Used         int64             `json:"used"`
	Limit        int64             `json:"limit"`
}

type subscriptionJSON struct {
	Plan               string         `json:"plan"`
	MonthlyLimit       int64          `json:"monthlyLimit"`
	RateLimitPerMinute int            `json:"rateLimitPerMinute"`
	ExpiresAt          timestamp.Time `json:"expiresAt"`
	Active             bool           `json:"active"`
	StartedAt          timestamp.Time `json:"startedAt"`
	EndedAt            timestamp.Time `json:"endedAt"`
}

func subscriptionOut(s domain.Subscription, now time.Time) *subscriptionJSON {
	return &subscriptionJSON{
		Plan: s.Plan, MonthlyLimit: s.MonthlyLimit, RateLimitPerMinute: domain.RateLimit(&s),
		ExpiresAt: timestamp.Time{Time: s.ExpiresAt}, Active: s.Active(now),
		StartedAt: timestamp.Time{Time: s.StartedAt}, EndedAt: timestamp.Time{Time: s.EndedAt},
	}
}

func accountID(c *fiber.Ctx) (int64, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, domain.ErrAccountNotFound
	}
	return id, nil
}

// createAccount: POST {"name","email"} -> 201 the account with its new token.
func (a *Admin) createAccount(c *fiber.Ctx) error {
	o, err := parseObject(c.Body())
	if err != nil {
		return err
	}
	name, err := o.text("name", maxNameLen)
	if err != nil {
		return err
	}
	email, err := o.text("email", maxEmailLen)
	if err != nil {
		return err
	}
	if !strings.Contains(email, "@") {
		return invalid("email must contain @")
	}
	tok := token.New()
	acc, err := a.store.CreateAccount(c.UserContext(), name, email, token.Digest(tok), a.now())
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(accountJSON{
		ID: acc.ID, Name: acc.Name, Email: acc.Email, APIToken: tok,
		CreatedAt: timestamp.Time{Time: acc.CreatedAt},
	})
}

// getAccount: GET -> the account, its subscription and this month's usage.
func (a *Admin) getAccount(c *fiber.Ctx) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	now := a.now()
	month := timestamp.Month(now)
	v, err := a.store.Account(c.UserContext(), id, month)
	if err != nil {
		return err
	}
	return c.JSON(viewOut(v, month, now))
}

// putSubscription: PUT {"plan","monthlyLimit","rateLimitPerMinute"?,"expiresAt"?}
// replaces the subscription and returns it.
func (a *Admin) putSubscription(c *fiber.Ctx) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	o, err := parseObject(c.Body())
	if err != nil {
		return err
	}
	plan, err := o.text("plan", maxPlanLen)
	if err != nil {
		return err
	}
	limit, err := o.integer("monthlyLimit", 0, nil)
	if err != nil {
		return err
	}
	def := int64(domain.DefaultRateLimitPerMinute)
	rate, err := o.integer("rateLimitPerMinute", 1, &def)
	if err != nil {
		return err
	}
	if rate > 1_000_000 {
		return invalid("rateLimitPerMinute must be at most 1000000")
	}
	expires, err := o.time("expiresAt")
	if err != nil {
		return err
	}
	now := a.now()
	sub, err := a.store.PutSubscription(c.UserContext(), id, domain.Subscription{
		Plan: plan, MonthlyLimit: limit, RateLimitPerMinute: int(rate), ExpiresAt: expires, StartedAt: now,
	})
	if err != nil {
		return err
	}
	a.changed.Changed(id)
	return c.JSON(subscriptionOut(sub, now))
}

// deleteSubscription ends the subscription and returns it (active false).
func (a *Admin) deleteSubscription(c *fiber.Ctx) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	now := a.now()
	sub, err := a.store.EndSubscription(c.UserContext(), id, now)
	if err != nil {
		return err
	}
	a.changed.Changed(id)
	return c.JSON(subscriptionOut(sub, now))
}

// rotateToken gives the account a new token; the old one fails at once.
func (a *Admin) rotateToken(c *fiber.Ctx) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	tok := token.New()
	if err := a.store.RotateToken(c.UserContext(), id, token.Digest(tok)); err != nil {
		return err
	}
	a.changed.Changed(id)
	return c.JSON(fiber.Map{"apiToken": tok})
}

// Paging of the accounts list (contract §14).
const (
	defaultListLimit = 50
	maxListLimit     = 200
	maxQueryLen      = 200
)

var (
	errInvalidLimit  = apperr.New(http.StatusBadRequest, "invalid_limit", "Invalid limit")
	errInvalidCursor = apperr.New(http.StatusBadRequest, "invalid_cursor", "Invalid cursor")
	errInvalidQuery  = apperr.New(http.StatusBadRequest, "invalid_query", "query must be at most 200 characters")
)

type accountListJSON struct {
	Accounts   []accountViewJSON `json:"accounts"`
	NextCursor *string           `json:"nextCursor"`
}

// listAccounts: GET ?query=&limit=&cursor= -> {"accounts":[...],"nextCursor"}
// by id ascending. The cursor is the last id of the page (opaque to
// clients): a keyset, so paging never skips or repeats an account.
func (a *Admin) listAccounts(c *fiber.Ctx) error {
	limit := defaultListLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return errInvalidLimit
		}
		limit = min(n, maxListLimit)
	}
	var after int64
	if s := c.Query("cursor"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return errInvalidCursor
		}
		after = n
	}
	query := c.Query("query")
	if !utf8.ValidString(query) || utf8.RuneCountInString(query) > maxQueryLen {
		return errInvalidQuery
	}
	now := a.now()
	month := timestamp.Month(now)
	views, err := a.store.ListAccounts(c.UserContext(), query, after, limit+1, month)
	if err != nil {
		return err
	}
	out := accountListJSON{Accounts: make([]accountViewJSON, 0, min(len(views), limit))}
	if len(views) > limit {
		views = views[:limit]
		next := strconv.FormatInt(views[limit-1].Account.ID, 10)
		out.NextCursor = &next
	}
	for _, v := range views {
		out.Accounts = append(out.Accounts, viewOut(v, month, now))
	}
	return c.JSON(out)
}

// viewOut is the JSON of an account view.
func viewOut(v store.AccountView, month string, now time.Time) accountViewJSON {
	out := accountViewJSON{
		accountJSON: accountJSON{ID: v.Account.ID, Name: v.Account.Name, Email: v.Account.Email,
			CreatedAt: timestamp.Time{Time: v.Account.CreatedAt}},
		Month: month, Used: v.Used, Limit: domain.Limit(v.Subscription, now),
	}
	if v.Subscription != nil {
		out.Subscription = subscriptionOut(*v.Subscription, now)
	}
	return out
}

// inviteAccount: POST -> {"inviteUrl","expiresAt"}: a one-time console link
// for the account's merchant, made by the console (contract §14).
func (a *Admin) inviteAccount(c *fiber.Ctx) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	v, err := a.store.Account(c.UserContext(), id, timestamp.Month(a.now()))
	if err != nil {
		return err
	}
	inv, err := a.invite(c.UserContext(), v.Account.ID, v.Account.Email)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"inviteUrl": inv.InviteURL, "expiresAt": timestamp.Time{Time: inv.ExpiresAt}})
}
