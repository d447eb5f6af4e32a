package web

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
)

type release struct {
	Version      string `json:"version"`
	VersionCode  int64  `json:"versionCode"`
	IsActive     bool   `json:"isActive"`
	ReleaseNotes string `json:"releaseNotes"`
	FileSize     int64  `json:"fileSize"`
	PublishedAt  string `json:"publishedAt"`
	Downloads    int64  `json:"downloads"`
}

func (w *Web) releasesPage(c *fiber.Ctx) error {
	var out struct {
		Versions []release `json:"versions"`
	}
	if err := w.callAPI(c.UserContext(), "GET", "/admin/v1/app-versions", nil, "", w.cfg.AdminToken, &out); err != nil {
		return err
	}
	return w.render(c, "releases", view{Title: "Releases", Session: sess(c), Nav: "releases", Flash: c.Query("flash"), Data: out.Versions})
}

// uploadRelease streams the browser's multipart body to the releases API as
// it came (an APK may be 200 MiB: nothing is buffered here). Its CSRF token
// is in the query: reading a form field would parse the whole body first.
func (w *Web) uploadRelease(c *fiber.Ctx) error {
	ct := c.Get(fiber.HeaderContentType)
	if !strings.HasPrefix(ct, "multipart/form-data") {
		return apperr.New(http.StatusBadRequest, "invalid_body", "Upload the APK with the form")
	}
	body := c.Context().RequestBodyStream()
	if body == nil {
		body = bytes.NewReader(c.Body())
	}
	if err := w.callAPI(c.UserContext(), "POST", "/admin/v1/app-versions", body, ct, w.cfg.AdminToken, nil); err != nil {
		return err
	}
	return c.Redirect("/console/admin/releases?flash=uploaded", http.StatusSeeOther)
}

func releaseCode(c *fiber.Ctx) (string, error) {
	n, err := strconv.ParseInt(c.Params("code"), 10, 64)
	if err != nil || n < 1 {
		return "", apperr.New(http.StatusNotFound, "version_not_found", "Version not found")
	}
	return strconv.FormatInt(n, 10), nil
}

func (w *Web) activateRelease(c *fiber.Ctx) error {
	code, err := releaseCode(c)
	if err != nil {
		return err
	}
	if err := w.callAPI(c.UserContext(), "POST", "/admin/v1/app-versions/"+code+"/activate", nil, "", w.cfg.AdminToken, nil); err != nil {
		return err
	}
	return c.Redirect("/console/admin/releases?flash=activated", http.StatusSeeOther)
}

func (w *Web) deleteRelease(c *fiber.Ctx) error {
	code, err := releaseCode(c)
	if err != nil {
		return err
	}
	if err := w.callAPI(c.UserContext(), "DELETE", "/admin/v1/app-versions/"+code, nil, "", w.cfg.AdminToken, nil); err != nil {
		return err
	}
	return c.Redirect("/console/admin/releases?flash=deleted", http.StatusSeeOther)
}

// sendTest queues one SMS through the merchant's own API token (the token
// the console holds sealed): the same path as the merchant's store.
func (w *Web) sendTest(c *fiber.Ctx) error {
	s := sess(c)
	tok, err := w.storedToken(c, s.AccountID)
	if err != nil {
		return err
	}
	if tok == "" {
		return apperr.New(http.StatusConflict, "token_unknown", "The console does not hold your API token yet: rotate it on the API token page first")
	}
	var out struct {
		Items []struct {
			Hash string `json:"hash"`
		} `json:"items"`
	}
	item := []map[string]string{{"phone": c.FormValue("phone"), "message": c.FormValue("message")}}
	if err := w.callAPI(c.UserContext(), "POST", "/api/"+tok+"/queue", jsonBody(item), "application/json", "", &out); err != nil {
		return err
	}
	hash := ""
	if len(out.Items) > 0 {
		hash = out.Items[0].Hash
	}
	return c.Redirect("/console/messages?flash=queued+"+hash, http.StatusSeeOther)
}
