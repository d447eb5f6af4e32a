package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	fastjson "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/services/ingress/internal/batch"
)

// MaxDeviceRunes is the longest device name kept.
const MaxDeviceRunes = 15

var errMessagesNotArray = apperr.New(http.StatusBadRequest, "invalid_body", "messages must be an array")

// Entry errors of a status request decided here; the status service decides
// the rest ("Unknown hash", "Status already final").
const (
	errEntryInvalid  = "Invalid item"
	errUnknownHash   = "Unknown hash"
	errInvalidStatus = "Invalid status"
)

type statusResponse struct {
	OK      bool                `json:"ok"`
	Updated int                 `json:"updated"`
	Errors  []events.IndexError `json:"errors"`
}

// status applies delivery reports (contract §4).
func (a *API) status(c *fiber.Ctx) error {
	ctx, cancel := a.timeout(c)
	defer cancel()
	auth, err := a.authenticate(ctx, c)
	if err != nil {
		return err
	}
	raw, err := a.body(c)
	if err != nil {
		return err
	}
	req, errs, err := parseStatus(raw, a.set.MaxBatch, a.hashes.Pos)
	if err != nil {
		return err
	}
	req.AccountID = auth.AccountID
	a.phones.see(auth.AccountID, req.Device, false, time.Now())
	a.m.Reports.Add(float64(len(req.Reports) + len(errs)))
	updated := 0
	if len(req.Reports) > 0 {
		res, err := rpc.Call[events.ApplyRequest, events.ApplyReply](ctx, a.nc, a.names.StatusApply(), req,
			rpc.Idempotent()) // a report applied twice is counted, not changed again
		if err != nil {
			return err
		}
		updated = res.Updated
		errs = append(errs, res.Errors...)
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Index < errs[j].Index })
	if errs == nil {
		errs = []events.IndexError{}
	}
	return c.JSON(statusResponse{OK: true, Updated: updated, Errors: errs})
}

// parseStatus checks the shape of a status body; entries that cannot be
// applied at all get their error here.
//
// decode turns a hash into the message's position; a string it refuses is
// sent on with position 0, which names no message, so the status service
// answers it "Unknown hash" by the same rules as any unknown message.
func parseStatus(raw []byte, maxEntries int, decode func(string) (int64, bool)) (events.ApplyRequest, []events.IndexError, error) {
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '{' {
		if req, ok := parseStatusTyped(trimmed, maxEntries, decode); ok {
			return req, nil, nil
		}
	}
	return parseStatusSlow(raw, maxEntries, decode)
}

// parseStatusSlow is parseStatus entry by entry (encoding/json).
func parseStatusSlow(raw []byte, maxEntries int, decode func(string) (int64, bool)) (events.ApplyRequest, []events.IndexError, error) {
	var body struct {
		Device   json.RawMessage `json:"device"`
		Messages json.RawMessage `json:"messages"`
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return events.ApplyRequest{}, nil, errMessagesNotArray
		}
		return events.ApplyRequest{}, nil, apperr.ErrInvalidJSON
	}
	if err := json.Unmarshal(trimmed, &body); err != nil {
		return events.ApplyRequest{}, nil, apperr.ErrInvalidJSON
	}
	var entries []json.RawMessage
	if m := bytes.TrimSpace(body.Messages); len(m) == 0 || m[0] != '[' || json.Unmarshal(m, &entries) != nil {
		return events.ApplyRequest{}, nil, errMessagesNotArray
	}
	if len(entries) > maxEntries {
		return events.ApplyRequest{}, nil, batch.TooLarge(maxEntries)
	}
	req := events.ApplyRequest{Device: device(body.Device), Reports: make([]events.ApplyReport, 0, len(entries))}
	var errs []events.IndexError
	for i, e := range entries {
		var entry struct {
			Hash   json.RawMessage `json:"hash"`
			Status json.RawMessage `json:"status"`
		}
		if e = bytes.TrimSpace(e); len(e) == 0 || e[0] != '{' || json.Unmarshal(e, &entry) != nil {
			errs = append(errs, events.IndexError{Index: i, Error: errEntryInvalid})
			continue
		}
		var hash string
		if json.Unmarshal(entry.Hash, &hash) != nil || hash == "" {
			errs = append(errs, events.IndexError{Index: i, Error: errUnknownHash})
			continue
		}
		var status int
		if json.Unmarshal(entry.Status, &status) != nil {
			errs = append(errs, events.IndexError{Index: i, Error: errInvalidStatus})
			continue
		}
		pos, _ := decode(hash)
		req.Reports = append(req.Reports, events.ApplyReport{Index: i, Pos: pos, Status: status})
	}
	return req, errs, nil
}

// typedStatusBody is a status body whose fields all have the expected types.
type typedStatusBody struct {
	Device   json.RawMessage `json:"device"`
	Messages []struct {
		Hash   *string `json:"hash"`
		Status *int    `json:"status"`
	} `json:"messages"`
}

// parseStatusTyped is the fast path for the common body: every entry an
// object with a non-empty string hash and an integer status, decoded in one
// pass (goccy/go-json). It reports false when the body needs the
// entry-by-entry path, which gives each odd entry its own error; both give
// the same result for a body this one accepts.
func parseStatusTyped(body []byte, maxEntries int, decode func(string) (int64, bool)) (events.ApplyRequest, bool) {
	if !utf8.Valid(body) || bytes.Contains(body, []byte("null")) {
		return events.ApplyRequest{}, false
	}
	var typed typedStatusBody
	if fastjson.Unmarshal(body, &typed) != nil || typed.Messages == nil || len(typed.Messages) > maxEntries {
		return events.ApplyRequest{}, false
	}
	req := events.ApplyRequest{Device: device(typed.Device), Reports: make([]events.ApplyReport, len(typed.Messages))}
	for i, m := range typed.Messages {
		if m.Hash == nil || *m.Hash == "" || m.Status == nil {
			return events.ApplyRequest{}, false
		}
		pos, _ := decode(*m.Hash)
		req.Reports[i] = events.ApplyReport{Index: i, Pos: pos, Status: *m.Status}
	}
	return req, true
}

// device is the phone's name, made storable and cut to 15 characters: a
// phone never loses a report over its name (contract §4). A name of the
// wrong type is dropped; control characters (NUL cannot be stored in
// PostgreSQL text) are removed and invalid UTF-8 becomes U+FFFD, then
// surrounding spaces are trimmed.
func device(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return deviceName(s)
}

// deviceName is device for a name already decoded (get_messages' device
// query parameter, contract §11).
func deviceName(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, s)
	}
	s = strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
	if utf8.RuneCountInString(s) > MaxDeviceRunes {
		r := []rune(s)
		s = string(r[:MaxDeviceRunes])
	}
	return s
}
