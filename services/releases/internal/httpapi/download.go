package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/services/releases/internal/blob"
	"github.com/apitosms/apitosms/services/releases/internal/metrics"
	"github.com/apitosms/apitosms/services/releases/internal/store"
)

const apkContentType = "application/vnd.android.package-archive"

// downloadActive is GET|HEAD /download/app.apk: the active version's APK.
func (h *Handler) downloadActive(c *fiber.Ctx) error {
	v, err := h.store.Active(c.UserContext())
	if errors.Is(err, store.ErrNotFound) {
		return errNoActive
	}
	if err != nil {
		return err
	}
	return h.serve(c, v)
}

// downloadVersion is GET|HEAD /api/download/{version_code}.
func (h *Handler) downloadVersion(c *fiber.Ctx) error {
	code, ok := parseCode(c.Params("code"))
	if !ok {
		return errVersionNotFound
	}
	v, err := h.store.Get(c.UserContext(), code)
	if errors.Is(err, store.ErrNotFound) {
		return errVersionNotFound
	}
	if err != nil {
		return err
	}
	return h.serve(c, v)
}

// serve answers a download of v: 304 when If-None-Match names its ETag (the
// SHA-256), 206 for one satisfiable byte range (416 when unsatisfiable; a
// malformed or multi-range header is ignored), HEAD with headers only,
// otherwise 200. The body is streamed from the object store. Exactly the
// GETs whose body starts at byte 0 add one to the version's counter.
func (h *Handler) serve(c *fiber.Ctx, v store.Version) error {
	etag := `"` + v.SHA256 + `"`
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && etagListMatches(inm, etag) {
		h.m.Downloads.WithLabelValues(metrics.KindNotModified).Inc()
		c.Set(fiber.HeaderETag, etag)
		return c.SendStatus(http.StatusNotModified)
	}
	head := c.Method() == fiber.MethodHead
	start, length, status := int64(0), v.FileSize, http.StatusOK
	if rh := c.Get(fiber.HeaderRange); rh != "" && !head && ifRangeMatches(c.Get(fiber.HeaderIfRange), etag) {
		s, n, ok, unsatisfiable := parseRange(rh, v.FileSize)
		if unsatisfiable {
			return errRangeNotSatisf.WithHeader(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(v.FileSize, 10))
		}
		if ok {
			start, length, status = s, n, http.StatusPartialContent
			c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(s, 10)+"-"+
				strconv.FormatInt(s+n-1, 10)+"/"+strconv.FormatInt(v.FileSize, 10))
		}
	}
	c.Set(fiber.HeaderContentType, apkContentType)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="app-v`+safeFilename(v.Version)+`.apk"`)
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	if head {
		h.m.Downloads.WithLabelValues(metrics.KindHead).Inc()
		c.Status(http.StatusOK)
		c.Response().Header.SetContentLength(int(v.FileSize))
		return nil
	}

	body, err := h.blobs.Open(c.UserContext(), v.ObjectName, start, length, h.downloadTimeout)
	if errors.Is(err, blob.ErrNotFound) {
		h.log.Error("apk object missing", "versionCode", v.VersionCode, "object", v.ObjectName)
		return errVersionNotFound
	}
	if err != nil {
		return err
	}
	if start == 0 {
		if err := h.store.CountDownload(c.UserContext(), v.VersionCode); err != nil {
			body.Close()
			return err
		}
		h.m.Downloads.WithLabelValues(metrics.KindFull).Inc()
	} else {
		h.m.Downloads.WithLabelValues(metrics.KindRange).Inc()
	}
	c.Status(status)
	// fasthttp copies the stream to the client after the handler returns,
	// then closes it.
	c.Context().SetBodyStream(&countingReader{ReadCloser: body, bytes: h.m.DownloadBytes,
		log: h.log, code: v.VersionCode}, int(length))
	return nil
}

// parseRange parses a Range header against a file of size bytes. ok reports
// a single satisfiable range [start, start+length); unsatisfiable a
// well-formed range that starts past the end (or an empty suffix). Neither
// means the header is to be ignored: another unit, bad syntax, several ranges.
func parseRange(h string, size int64) (start, length int64, ok, unsatisfiable bool) {
	unit, spec, found := strings.Cut(h, "=")
	if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return 0, 0, false, false
	}
	spec = strings.TrimSpace(spec)
	if strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, false
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" { // suffix: the last n bytes
		n, err := parseDigits(last)
		if err != nil {
			return 0, 0, false, false
		}
		if n == 0 {
			return 0, 0, false, true
		}
		n = min(n, size)
		return size - n, n, true, false
	}
	a, err := parseDigits(first)
	if err != nil {
		return 0, 0, false, false
	}
	b := size - 1
	if last != "" {
		if b, err = parseDigits(last); err != nil || b < a {
			return 0, 0, false, false
		}
	}
	if a >= size {
		return 0, 0, false, true
	}
	b = min(b, size-1)
	return a, b - a + 1, true, false
}

func parseDigits(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}

// etagListMatches applies If-None-Match's weak comparison: "*" or any listed
// tag equal to etag once a W/ prefix is dropped.
func etagListMatches(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// ifRangeMatches reports whether a Range header may be honoured given
// If-Range: absent, or the strong ETag itself. A date never matches (no
// Last-Modified is sent), so the whole file is served.
func ifRangeMatches(ifRange, etag string) bool {
	ifRange = strings.TrimSpace(ifRange)
	return ifRange == "" || ifRange == etag
}

// safeFilename keeps a version string usable inside a quoted filename.
func safeFilename(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '+':
			return r
		}
		return '_'
	}, s)
}

// countingReader adds the bytes read through it to a counter and logs a
// failure of the object store mid-stream (the client sees a short body).
type countingReader struct {
	io.ReadCloser
	bytes prometheus.Counter
	log   *slog.Logger
	code  int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.bytes.Add(float64(n))
	}
	if err != nil && err != io.EOF {
		r.log.Warn("apk stream failed", "versionCode", r.code, "err", err)
	}
	return n, err
}
