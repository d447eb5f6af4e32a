package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/rpc"
	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/services/ingress/internal/batch"
)

// Message tracking (contract §9): lookups, history and CSV export are
// counted in the token's read window; cancel in the send window (§1). The
// queue service answers them from its messages table over request/reply.

// Errors of the tracking endpoints.
var (
	errMessageNotFound = apperr.New(http.StatusNotFound, "message_not_found", "Message not found")
	errHashesNotArray  = apperr.New(http.StatusBadRequest, "invalid_body", "hashes must be an array of strings")
	errNoHashes        = apperr.New(http.StatusBadRequest, "empty_batch", "No hashes given")
	errTooManyHashes   = apperr.New(http.StatusRequestEntityTooLarge, "batch_too_large", "Too many hashes in one request (max 1000)")
	errInvalidCursor   = apperr.New(http.StatusBadRequest, "invalid_cursor", "Invalid cursor")
	errInvalidStatusQ  = apperr.New(http.StatusBadRequest, "invalid_status", "Invalid status")
	errInvalidPhone    = apperr.New(http.StatusBadRequest, "invalid_phone", "Invalid phone format")
	errInvalidFrom     = apperr.New(http.StatusBadRequest, "invalid_from", "Invalid from")
	errInvalidTo       = apperr.New(http.StatusBadRequest, "invalid_to", "Invalid to")
)

const (
	defaultHistoryLimit = 50
	csvPage             = events.MaxHistory
	csvPageTimeout      = 30 * time.Second
)

// statusNames are the contract's status names, by status.
var statusNames = [...]string{"new", "initiated", "sent", "failed", "expired", "cancelled"}

// trackedMessage is the message object of contract §9, fields in its order.
type trackedMessage struct {
	Hash        string         `json:"hash"`
	Phone       string         `json:"phone"`
	Text        string         `json:"text"`
	Status      int            `json:"status"`
	StatusName  string         `json:"statusName"`
	QueuedAt    timestamp.Time `json:"queuedAt"`
	InitiatedAt timestamp.Time `json:"initiatedAt"`
	FinishedAt  timestamp.Time `json:"finishedAt"`
	Device      *string        `json:"device"`
	Attempts    int            `json:"attempts"`
	// Added when §12's fields were given (priority with any of them).
	SendAt     *timestamp.Time `json:"sendAt,omitempty"`
	ValidUntil *timestamp.Time `json:"validUntil,omitempty"`
	Priority   string          `json:"priority,omitempty"`
}

func (a *API) trackedMessage(m events.TrackedSMS) trackedMessage {
	out := trackedMessage{
		Hash: a.hashes.Hash(m.Pos), Phone: m.Phone, Text: m.Text, Status: m.Status,
		QueuedAt: timestamp.Time{Time: m.QueuedAt}, Attempts: m.Attempts,
	}
	if m.Status >= 0 && m.Status < len(statusNames) {
		out.StatusName = statusNames[m.Status]
	}
	if m.ClaimedAt != nil {
		out.InitiatedAt = timestamp.Time{Time: *m.ClaimedAt}
	}
	if m.FinishedAt != nil {
		out.FinishedAt = timestamp.Time{Time: *m.FinishedAt}
	}
	if m.Device != "" {
		d := m.Device
		out.Device = &d
	}
	if m.SendAt != 0 {
		out.SendAt = &timestamp.Time{Time: time.UnixMilli(m.SendAt)}
	}
	if m.ValidUntil != 0 {
		out.ValidUntil = &timestamp.Time{Time: time.UnixMilli(m.ValidUntil)}
	}
	switch {
	case m.High:
		out.Priority = "high"
	case m.SendAt != 0 || m.ValidUntil != 0:
		out.Priority = "normal"
	}
	return out
}

// lookupPositions asks the queue for the account's messages at positions
// (unique), as many requests as the replies need, and returns them by
// position.
func (a *API) lookupPositions(ctx context.Context, account int64, positions []int64) (map[int64]events.TrackedSMS, error) {
	found := make(map[int64]events.TrackedSMS, len(positions))
	for rest := positions; len(rest) > 0; {
		res, err := rpc.Call[events.LookupRequest, events.LookupReply](ctx, a.nc, a.names.QueueLookup(),
			events.LookupRequest{AccountID: account, Positions: rest})
		if err != nil {
			return nil, err
		}
		for _, m := range res.Messages {
			found[m.Pos] = m
		}
		if res.Done <= 0 || res.Done > len(rest) {
			res.Done = len(rest)
		}
		rest = rest[res.Done:]
	}
	return found, nil
}

// message answers GET /api/{token}/messages/{hash}.
func (a *API) message(c *fiber.Ctx) error {
	ctx, cancel := a.timeout(c)
	defer cancel()
	auth, err := a.authenticateRead(ctx, c)
	if err != nil {
		return err
	}
	pos, ok := a.hashes.Pos(c.Params("hash"))
	if !ok {
		return errMessageNotFound
	}
	found, err := a.lookupPositions(ctx, auth.AccountID, []int64{pos})
	if err != nil {
		return err
	}
	m, ok := found[pos]
	if !ok {
		return errMessageNotFound
	}
	return c.JSON(a.trackedMessage(m))
}

type lookupResponse struct {
	Messages []trackedMessage `json:"messages"`
	NotFound []string         `json:"notFound"`
}

// lookup answers POST /api/{token}/messages/lookup {"hashes":[...]}: the
// messages in the order asked (a hash asked twice is answered twice), and
// the hashes that are not this token's messages, malformed ones included.
func (a *API) lookup(c *fiber.Ctx) error {
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
	hashes, err := parseHashes(raw)
	if err != nil {
		return err
	}
	asked := make([]int64, len(hashes)) // 0: malformed
	positions := make([]int64, 0, len(hashes))
	seen := make(map[int64]bool, len(hashes))
	for i, h := range hashes {
		if p, ok := a.hashes.Pos(h); ok {
			asked[i] = p
			if !seen[p] {
				seen[p] = true
				positions = append(positions, p)
			}
		}
	}
	found, err := a.lookupPositions(ctx, auth.AccountID, positions)
	if err != nil {
		return err
	}
	out := lookupResponse{Messages: make([]trackedMessage, 0, len(found)), NotFound: []string{}}
	for i, h := range hashes {
		if m, known := found[asked[i]]; known && asked[i] != 0 {
			out.Messages = append(out.Messages, a.trackedMessage(m))
		} else {
			out.NotFound = append(out.NotFound, h)
		}
	}
	return c.JSON(out)
}

// parseHashes reads {"hashes":[...]}: 1 to events.MaxLookup strings.
func parseHashes(raw []byte) ([]string, error) {
	var body struct {
		Hashes json.RawMessage `json:"hashes"`
	}
	trimmed := bytes.TrimSpace(raw)
	if !json.Valid(trimmed) {
		return nil, apperr.ErrInvalidJSON
	}
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &body) != nil {
		return nil, errHashesNotArray
	}
	var items []json.RawMessage
	if h := bytes.TrimSpace(body.Hashes); len(h) == 0 || h[0] != '[' || json.Unmarshal(h, &items) != nil {
		return nil, errHashesNotArray
	}
	if len(items) == 0 {
		return nil, errNoHashes
	}
	if len(items) > events.MaxLookup {
		return nil, errTooManyHashes
	}
	hashes := make([]string, len(items))
	for i, it := range items {
		if json.Unmarshal(it, &hashes[i]) != nil || bytes.TrimSpace(it)[0] != '"' {
			return nil, errHashesNotArray
		}
	}
	return hashes, nil
}

type historyResponse struct {
	Messages   []trackedMessage `json:"messages"`
	NextCursor *string          `json:"nextCursor"`
}

// history answers GET /api/{token}/messages: newest first, filtered, paged
// by an opaque cursor; with Accept: text/csv every matching message as CSV.
func (a *API) history(c *fiber.Ctx) error {
	ctx, cancel := a.timeout(c)
	defer cancel()
	auth, err := a.authenticateRead(ctx, c)
	if err != nil {
		return err
	}
	req, err := a.parseHistory(c)
	if err != nil {
		return err
	}
	req.AccountID = auth.AccountID
	if wantsCSV(c.Get(fiber.HeaderAccept)) {
		req.Before, req.Limit = 0, csvPage
		first, err := a.historyPage(ctx, req)
		if err != nil {
			return err
		}
		return a.streamCSV(c, req, first)
	}
	page, err := a.historyPage(ctx, req)
	if err != nil {
		return err
	}
	out := historyResponse{Messages: make([]trackedMessage, len(page.Messages))}
	for i, m := range page.Messages {
		out.Messages[i] = a.trackedMessage(m)
	}
	if page.Next != 0 {
		cur := a.hashes.Hash(page.Next)
		out.NextCursor = &cur
	}
	return c.JSON(out)
}

// historyPage asks the queue for req.Limit messages, as many requests as
// the replies need (a reply is kept within one NATS message).
func (a *API) historyPage(ctx context.Context, req events.HistoryRequest) (events.HistoryReply, error) {
	var page events.HistoryReply
	for {
		res, err := rpc.Call[events.HistoryRequest, events.HistoryReply](ctx, a.nc, a.names.QueueHistory(), req)
		if err != nil {
			return page, err
		}
		page.Messages = append(page.Messages, res.Messages...)
		page.Next = res.Next
		if res.Next == 0 || len(page.Messages) >= req.Limit || len(res.Messages) == 0 {
			return page, nil
		}
		req.Before, req.Limit = res.Next, req.Limit-len(res.Messages)
	}
}

// parseHistory reads the history query: status (names or numbers,
// repeatable or comma-separated), phone (normalized as in §2), from and to
// (RFC 3339, on queuedAt, from inclusive, to exclusive), limit (default 50,
// above 500 means 500, else as §3) and cursor.
func (a *API) parseHistory(c *fiber.Ctx) (events.HistoryRequest, error) {
	args := c.Context().QueryArgs()
	req := events.HistoryRequest{Limit: defaultHistoryLimit}
	if args.Has("limit") {
		n, ok := parseCount(string(args.Peek("limit")))
		if !ok {
			return req, errInvalidLimit
		}
		req.Limit = min(n, events.MaxHistory)
	}
	for _, v := range args.PeekMulti("status") {
		for _, s := range strings.Split(string(v), ",") {
			st, ok := parseStatusName(strings.TrimSpace(s))
			if !ok {
				return req, errInvalidStatusQ
			}
			req.Statuses = append(req.Statuses, st)
		}
	}
	if args.Has("phone") {
		p, ok := batch.NormalizePhone(string(args.Peek("phone")))
		if !ok {
			return req, errInvalidPhone
		}
		req.Phone = p
	}
	var err error
	if req.From, err = parseQueryTime(args.Has("from"), string(args.Peek("from")), errInvalidFrom); err != nil {
		return req, err
	}
	if req.To, err = parseQueryTime(args.Has("to"), string(args.Peek("to")), errInvalidTo); err != nil {
		return req, err
	}
	if cur := string(args.Peek("cursor")); cur != "" {
		pos, ok := a.hashes.Pos(cur)
		if !ok {
			return req, errInvalidCursor
		}
		req.Before = pos
	}
	return req, nil
}

// parseCount reads a limit as §3 does: an integer of at least 1 (a huge one
// is clamped by the caller), anything else refused.
func parseCount(s string) (int, bool) {
	digits := strings.TrimPrefix(s, "+")
	if digits == "" || len(s) > 0 && s[0] == '-' {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return events.MaxHistory, true // only too large to represent
	}
	return n, n >= 1
}

// parseStatusName reads a status as a name or a number 0-5.
func parseStatusName(s string) (int, bool) {
	for i, name := range statusNames {
		if strings.EqualFold(s, name) || s == strconv.Itoa(i) {
			return i, true
		}
	}
	return 0, false
}

// parseQueryTime reads an RFC 3339 time. A '+' of the offset left
// unescaped in the query arrives as a space: it is read as '+'.
func parseQueryTime(present bool, v string, bad error) (*time.Time, error) {
	if !present {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.Replace(v, " ", "+", 1))
	if err != nil {
		return nil, bad
	}
	t = t.UTC()
	return &t, nil
}

// wantsCSV reports whether the Accept header asks for text/csv.
func wantsCSV(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/csv") {
			return true
		}
	}
	return false
}

var csvHeader = []string{"hash", "phone", "text", "status", "statusName", "queuedAt", "initiatedAt", "finishedAt", "device", "attempts"}

// streamCSV answers every message matching req as CSV, first being the
// first page: the body is written page by page as the queue answers them
// (never all in memory). Cells of free text (text, device) that a
// spreadsheet would read as a formula are prefixed with a single quote. A
// failure after the first page ends the body early and is logged.
func (a *API) streamCSV(c *fiber.Ctx, req events.HistoryRequest, first events.HistoryReply) error {
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="messages.csv"`)
	c.Status(http.StatusOK)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		cw := csv.NewWriter(w)
		_ = cw.Write(csvHeader)
		page := first
		row := make([]string, len(csvHeader))
		for {
			for _, m := range page.Messages {
				t := a.trackedMessage(m)
				row[0], row[1], row[2] = t.Hash, t.Phone, csvSafe(t.Text)
				row[3], row[4] = strconv.Itoa(t.Status), t.StatusName
				row[5], row[6], row[7] = csvTime(t.QueuedAt), csvTime(t.InitiatedAt), csvTime(t.FinishedAt)
				row[8] = ""
				if t.Device != nil {
					row[8] = csvSafe(*t.Device)
				}
				row[9] = strconv.Itoa(t.Attempts)
				_ = cw.Write(row)
			}
			cw.Flush()
			if cw.Error() != nil || w.Flush() != nil || page.Next == 0 {
				return // done, or the client went away
			}
			req.Before = page.Next
			ctx, cancel := context.WithTimeout(context.Background(), csvPageTimeout)
			var err error
			page, err = a.historyPage(ctx, req)
			cancel()
			if err != nil {
				a.log.Warn("csv export ended early", "err", err)
				return
			}
		}
	})
	return nil
}

func csvTime(t timestamp.Time) string {
	if t.IsZero() {
		return ""
	}
	return timestamp.Format(t.Time)
}

// csvSafe defuses CSV injection (OWASP): a cell starting with =, +, -, @,
// tab or carriage return gets a leading single quote.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// cancelMessage answers DELETE /api/{token}/messages/{hash}, counted in
// the send window (§1): the message if it was still new and is now
// cancelled, 409 not_cancellable if it was handed out or is final.
func (a *API) cancelMessage(c *fiber.Ctx) error {
	ctx, cancel := a.timeout(c)
	defer cancel()
	auth, err := a.authenticate(ctx, c)
	if err != nil {
		return err
	}
	pos, ok := a.hashes.Pos(c.Params("hash"))
	if !ok {
		return errMessageNotFound
	}
	res, err := rpc.Call[events.CancelRequest, events.CancelReply](ctx, a.nc, a.names.QueueCancel(),
		events.CancelRequest{AccountID: auth.AccountID, Pos: pos})
	if err != nil {
		return err
	}
	return c.JSON(a.trackedMessage(res.Message))
}
