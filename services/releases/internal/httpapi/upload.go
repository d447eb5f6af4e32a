package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/services/releases/internal/blob"
	"github.com/apitosms/apitosms/services/releases/internal/metrics"
	"github.com/apitosms/apitosms/services/releases/internal/store"
)

const (
	maxVersionRunes = 50
	maxNotesBytes   = 64 << 10
	maxFieldBytes   = 1 << 10 // version, versionCode
	// drainLimit bounds how much of a refused upload is read and discarded
	// so the client receives the error answer; past it the connection is closed.
	drainLimit = 8 << 20
)

var apkMagic = []byte("PK\x03\x04")

// uploadFields are the text fields of an upload, as received.
type uploadFields struct {
	version, versionCode, releaseNotes string
	hasVersion, hasCode                bool
}

// upload is POST /admin/v1/app-versions: a multipart/form-data body with
// version, versionCode, releaseNotes and file. The file part is piped into
// the object store as it arrives (never held whole in memory) and the row is
// inserted last; if anything fails after bytes were stored, the object is
// deleted. Answers 201 with the version (published, not active).
func (h *Handler) upload(c *fiber.Ctx) error {
	src, raw, err := openParts(c)
	if err == nil {
		defer src.close()
		var v store.Version
		v, err = h.receive(c.UserContext(), src)
		if err == nil {
			h.m.Uploads.WithLabelValues(metrics.OutcomePublished).Inc()
			h.log.Info("app version published", "versionCode", v.VersionCode, "bytes", v.FileSize)
			return c.Status(http.StatusCreated).JSON(h.adminVersion(v), jsonType)
		}
	}
	h.m.Uploads.WithLabelValues(uploadOutcome(err)).Inc()
	if raw != nil {
		// Read what the client still sends so it gets the answer rather than
		// a reset connection; give up (and close) past drainLimit.
		if n, _ := io.CopyN(io.Discard, raw, drainLimit); n == drainLimit {
			c.Context().SetConnectionClose()
		}
	}
	return err
}

// receive reads every part of src, stores the file and inserts the row.
func (h *Handler) receive(ctx context.Context, src parts) (store.Version, error) {
	var (
		f         uploadFields
		stored    *blob.Stored
		published bool
	)
	defer func() {
		if stored != nil && !published {
			if err := h.blobs.Delete(context.WithoutCancel(ctx), stored.Name); err != nil {
				h.log.Error("delete refused apk object", "object", stored.Name, "err", err)
			}
		}
	}()
	for {
		p, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return store.Version{}, errInvalidBody("Malformed multipart/form-data body")
		}
		switch p.name {
		case "version":
			f.version, err = readField(p.r, "version", maxFieldBytes)
			f.hasVersion = true
		case "versionCode":
			f.versionCode, err = readField(p.r, "versionCode", maxFieldBytes)
			f.hasCode = true
		case "releaseNotes":
			f.releaseNotes, err = readField(p.r, "releaseNotes", maxNotesBytes)
		case "file":
			if stored != nil {
				return store.Version{}, errInvalidBody("Only one file may be uploaded")
			}
			if err := h.precheck(ctx, f); err != nil {
				return store.Version{}, err
			}
			var st blob.Stored
			st, err = h.storeAPK(ctx, p.r)
			if err == nil {
				stored = &st
			}
		}
		if err != nil {
			return store.Version{}, err
		}
	}
	if stored == nil {
		return store.Version{}, errInvalidBody("file is required")
	}
	v, err := validate(f)
	if err != nil {
		return store.Version{}, err
	}
	v.FileSize, v.SHA256, v.ObjectName = stored.Size, stored.SHA256, stored.Name
	v.PublishedAt = time.Now().UTC()
	ok, err := h.store.Insert(ctx, &v)
	if err != nil {
		return store.Version{}, err
	}
	if !ok {
		return store.Version{}, errVersionExists
	}
	published = true
	return v, nil
}

// precheck refuses, before any file byte is stored, what the fields received
// so far already make certain to fail (a bad or taken versionCode). The
// insert's primary key stays the arbiter for concurrent uploads.
func (h *Handler) precheck(ctx context.Context, f uploadFields) error {
	if !f.hasCode {
		return nil
	}
	code, err := parseVersionCode(f.versionCode)
	if err != nil {
		return err
	}
	exists, err := h.store.Exists(ctx, code)
	if err != nil {
		return err
	}
	if exists {
		return errVersionExists
	}
	return nil
}

// storeAPK checks the ZIP signature, then streams r into the object store.
func (h *Handler) storeAPK(ctx context.Context, r io.Reader) (blob.Stored, error) {
	head := make([]byte, len(apkMagic))
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return blob.Stored{}, errInvalidBody("Malformed multipart/form-data body")
	}
	if n < len(apkMagic) || !bytes.Equal(head, apkMagic) {
		return blob.Stored{}, errInvalidAPK
	}
	st, err := h.blobs.Put(ctx, io.MultiReader(bytes.NewReader(head), r), h.maxAPK)
	var readErr *blob.ReadError
	switch {
	case errors.Is(err, blob.ErrTooLarge):
		return blob.Stored{}, errAPKTooLarge(h.maxAPK)
	case errors.As(err, &readErr):
		return blob.Stored{}, errInvalidBody("Malformed multipart/form-data body")
	case err != nil:
		return blob.Stored{}, err
	}
	return st, nil
}

// validate checks the text fields and returns the version they describe.
func validate(f uploadFields) (store.Version, error) {
	version := strings.TrimSpace(f.version)
	if version == "" || utf8.RuneCountInString(version) > maxVersionRunes {
		return store.Version{}, errInvalidBody("version is required (at most 50 characters)")
	}
	// No control characters: NUL cannot be stored in PostgreSQL text, and
	// the version is part of the download's Content-Disposition header.
	if strings.IndexFunc(version, unicode.IsControl) >= 0 {
		return store.Version{}, errInvalidBody("version must not contain control characters")
	}
	if strings.IndexFunc(f.releaseNotes, notesControl) >= 0 {
		return store.Version{}, errInvalidBody("releaseNotes must not contain control characters other than tabs and line breaks")
	}
	if !f.hasCode {
		return store.Version{}, errInvalidBody("versionCode must be a positive integer")
	}
	code, err := parseVersionCode(f.versionCode)
	if err != nil {
		return store.Version{}, err
	}
	return store.Version{Version: version, VersionCode: code, ReleaseNotes: f.releaseNotes}, nil
}

// notesControl reports a control character release notes may not hold
// (they are multi-line text: tabs and line breaks are fine).
func notesControl(r rune) bool {
	return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
}

func parseVersionCode(s string) (int64, error) {
	code, ok := parseCode(strings.TrimSpace(s))
	if !ok {
		return 0, errInvalidBody("versionCode must be a positive integer")
	}
	return code, nil
}

// readField reads a text field of at most max bytes of valid UTF-8.
func readField(r io.Reader, name string, max int64) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return "", errInvalidBody("Malformed multipart/form-data body")
	}
	if int64(len(b)) > max {
		return "", errInvalidBody(name + " too long (max " + strconv.FormatInt(max, 10) + " bytes)")
	}
	if !utf8.Valid(b) {
		return "", errInvalidBody(name + " must be valid UTF-8")
	}
	return string(b), nil
}

func uploadOutcome(err error) string {
	e, ok := apperr.As(err)
	if !ok {
		return metrics.OutcomeError
	}
	switch e.Code {
	case errVersionExists.Code:
		return metrics.OutcomeDuplicate
	case "apk_too_large":
		return metrics.OutcomeTooLarge
	case "invalid_body", errInvalidAPK.Code:
		return metrics.OutcomeInvalid
	}
	return metrics.OutcomeError
}

// part is one form field or file of an upload.
type part struct {
	name string
	r    io.Reader
}

// parts yields an upload's parts in order; io.EOF after the last.
type parts interface {
	next() (part, error)
	close()
}

// openParts reads the request body as multipart/form-data. With fiber's
// StreamRequestBody the body is a stream, parsed part by part as it arrives;
// otherwise it is the in-memory body (within BodyLimit). If fasthttp already
// parsed the form (DisablePreParseMultipartForm unset: small files in
// memory, large ones in temporary files) its parts are used. raw is the body
// stream to drain after a refusal, if any.
func openParts(c *fiber.Ctx) (src parts, raw io.Reader, err error) {
	req := c.Request()
	boundary := string(req.Header.MultipartFormBoundary())
	if s := c.Context().RequestBodyStream(); s != nil {
		if boundary == "" {
			return nil, s, errInvalidBody("Expected a multipart/form-data body")
		}
		return streamParts{multipart.NewReader(s, boundary)}, s, nil
	}
	if boundary == "" {
		return nil, nil, errInvalidBody("Expected a multipart/form-data body")
	}
	if body := req.Body(); len(body) > 0 {
		return streamParts{multipart.NewReader(bytes.NewReader(body), boundary)}, nil, nil
	}
	form, err := req.MultipartForm()
	if err != nil {
		return nil, nil, errInvalidBody("Malformed multipart/form-data body")
	}
	return newFormParts(form), nil, nil
}

type streamParts struct{ mr *multipart.Reader }

func (s streamParts) next() (part, error) {
	p, err := s.mr.NextPart()
	if err != nil {
		return part{}, err
	}
	return part{name: p.FormName(), r: p}, nil
}

func (s streamParts) close() {}

// formParts yields a parsed form: text fields first, then the file.
type formParts struct {
	fields []part
	files  []*multipart.FileHeader
	open   io.Closer
}

func newFormParts(form *multipart.Form) *formParts {
	fp := &formParts{}
	for name, values := range form.Value {
		for _, v := range values {
			fp.fields = append(fp.fields, part{name: name, r: strings.NewReader(v)})
		}
	}
	fp.files = form.File["file"]
	return fp
}

func (f *formParts) next() (part, error) {
	if len(f.fields) > 0 {
		p := f.fields[0]
		f.fields = f.fields[1:]
		return p, nil
	}
	f.close()
	if len(f.files) == 0 {
		return part{}, io.EOF
	}
	fh := f.files[0]
	f.files = f.files[1:]
	file, err := fh.Open()
	if err != nil {
		return part{}, err
	}
	f.open = file
	return part{name: "file", r: file}, nil
}

func (f *formParts) close() {
	if f.open != nil {
		f.open.Close()
		f.open = nil
	}
}
