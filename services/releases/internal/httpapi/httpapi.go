// Package httpapi serves the App Version endpoints (contract §5, public) and
// the operator's app-version API (contract §6, under /admin/v1/app-versions).
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/adminauth"
	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/services/releases/internal/blob"
	"github.com/apitosms/apitosms/services/releases/internal/metrics"
	"github.com/apitosms/apitosms/services/releases/internal/store"
)

// The contract's errors of this API.
var (
	errNoActive        = apperr.New(http.StatusNotFound, "no_active_version", "No active version available")
	errVersionNotFound = apperr.New(http.StatusNotFound, "version_not_found", "Version not found")
	errVersionExists   = apperr.New(http.StatusConflict, "version_exists", "Version code already exists")
	errInvalidAPK      = apperr.New(http.StatusBadRequest, "invalid_apk", "File is not an APK (ZIP) file")
	errRangeNotSatisf  = apperr.New(http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable", "Requested range not satisfiable")
)

func errAPKTooLarge(max int64) *apperr.Error {
	return apperr.New(http.StatusRequestEntityTooLarge, "apk_too_large",
		"APK file too large (max "+strconv.FormatInt(max, 10)+" bytes)").With("maxBytes", max)
}

func errInvalidBody(msg string) *apperr.Error {
	return apperr.New(http.StatusBadRequest, "invalid_body", msg)
}

// Config is what the handlers need to know.
type Config struct {
	AdminToken  string
	PublicURL   string // base of downloadUrl, no trailing slash
	MaxAPKBytes int64
	// DownloadTimeout bounds one download's transfer; a slower client gets
	// a short body and resumes with Range.
	DownloadTimeout time.Duration
}

// Handler serves the releases endpoints.
type Handler struct {
	store     *store.Store
	blobs     *blob.Store
	m         *metrics.Metrics
	log       *slog.Logger
	publicURL string
	adminTok  string
	maxAPK    int64

	downloadTimeout time.Duration
}

// New returns the handlers over st and blobs.
func New(cfg Config, st *store.Store, blobs *blob.Store, m *metrics.Metrics, log *slog.Logger) *Handler {
	return &Handler{
		store: st, blobs: blobs, m: m, log: log,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		adminTok:  cfg.AdminToken, maxAPK: cfg.MaxAPKBytes,
		downloadTimeout: cfg.DownloadTimeout,
	}
}

// Register adds the public routes and the operator routes to r. GET routes
// answer HEAD too (fiber's Get): they change nothing, and a HEAD on a download
// is not counted (serve). Group roots are registered as "", which is the
// group's own path (with strict routing "/" would be another path).
func (h *Handler) Register(r fiber.Router) {
	r.Get("/api/app-version", h.getActive)
	r.Get("/api/app-versions", h.listPublic)
	r.Get("/download/app.apk", h.downloadActive)
	r.Get("/api/download/:code", h.downloadVersion)

	admin := r.Group("/admin/v1/app-versions", adminauth.Middleware(h.adminTok))
	admin.Post("", h.upload)
	admin.Get("", h.listAdmin)
	admin.Post("/:code/activate", h.activate)
	admin.Delete("/:code", h.unpublish)
}

func (h *Handler) getActive(c *fiber.Ctx) error {
	v, err := h.store.Active(c.UserContext())
	if errors.Is(err, store.ErrNotFound) {
		return errNoActive
	}
	if err != nil {
		return err
	}
	return c.JSON(h.active(v), jsonType)
}

func (h *Handler) listPublic(c *fiber.Ctx) error {
	vs, err := h.store.List(c.UserContext())
	if err != nil {
		return err
	}
	out := versionsJSON[versionJSON]{Versions: make([]versionJSON, 0, len(vs))}
	for _, v := range vs {
		out.Versions = append(out.Versions, h.version(v))
	}
	return c.JSON(out, jsonType)
}

func (h *Handler) listAdmin(c *fiber.Ctx) error {
	vs, err := h.store.List(c.UserContext())
	if err != nil {
		return err
	}
	out := versionsJSON[adminVersionJSON]{Versions: make([]adminVersionJSON, 0, len(vs))}
	for _, v := range vs {
		out.Versions = append(out.Versions, h.adminVersion(v))
	}
	return c.JSON(out, jsonType)
}

func (h *Handler) activate(c *fiber.Ctx) error {
	code, ok := parseCode(c.Params("code"))
	if !ok {
		return errVersionNotFound
	}
	ctx := c.UserContext()
	if err := h.store.Activate(ctx, code); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errVersionNotFound
		}
		return err
	}
	v, err := h.store.Get(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return errVersionNotFound // unpublished in the meantime
	}
	if err != nil {
		return err
	}
	h.log.Info("app version activated", "versionCode", code)
	return c.JSON(h.adminVersion(v), jsonType)
}

// unpublish deletes the row first (the version vanishes from lists and
// downloads at once), then its object. A failed object delete leaves an
// orphan object, logged, never a row without its file.
func (h *Handler) unpublish(c *fiber.Ctx) error {
	code, ok := parseCode(c.Params("code"))
	if !ok {
		return errVersionNotFound
	}
	ctx := c.UserContext()
	v, err := h.store.Delete(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return errVersionNotFound
	}
	if err != nil {
		return err
	}
	if err := h.blobs.Delete(context.WithoutCancel(ctx), v.ObjectName); err != nil {
		h.log.Error("delete apk object", "versionCode", code, "object", v.ObjectName, "err", err)
	}
	h.log.Info("app version unpublished", "versionCode", code)
	return c.SendStatus(http.StatusNoContent)
}

// parseCode parses a version code path segment: a positive decimal integer.
func parseCode(s string) (int64, bool) {
	if s == "" || s[0] == '+' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}
