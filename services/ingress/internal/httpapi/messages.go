package httpapi

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"

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
	// The optional device names the phone (contract §11), same rules as
	// the status body's device (§4); a pull is seen even if it fails.
	if dev := deviceName(c.Query("device")); dev != "" {
		a.phones.see(auth.AccountID, dev, true, time.Now())
	}
	req := events.ClaimRequest{AccountID: auth.AccountID, Limit: limit, Confirm: true}
	if d, ok := ctx.Deadline(); ok {
		req.WaitMs = max(time.Until(d).Milliseconds(), 1)
	}
	res, err := rpc.Call[events.ClaimRequest, events.ClaimReply](ctx, a.nc, a.names.QueueClaim(), req)
	if err != nil {
		return err
	}
	out := make([]message, len(res.Messages))
	for i, m := range res.Messages {
		out[i] = message{Phone: m.Phone, Text: m.Text, Hash: a.hashes.Hash(m.Pos)}
	}
	a.m.Claimed.Add(float64(len(out)))
	return a.answerClaimed(c, out, res.ClaimIDs)
}

// answerClaimed writes out as c.JSON does (same bytes, same headers) and,
// once the answer has been flushed to the phone's connection, confirms the
// claims ids (ClaimAck): the body is a stream that flushes itself and then
// acks. A process that dies before that, a connection that fails the write,
// or a HEAD request (no body is sent) never acks, and the queue hands the
// messages out again after its confirm timeout.
func (a *API) answerClaimed(c *fiber.Ctx, out []message, ids []int64) error {
	if len(ids) == 0 {
		return c.JSON(out)
	}
	body, err := c.App().Config().JSONEncoder(out)
	if err != nil {
		return err
	}
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	c.Response().SetBodyStream(&ackOnWrite{body: body, ids: ids, nc: a.nc, subject: a.names.QueueClaimAck()}, len(body))
	return nil
}

// ackOnWrite is an answer's body that confirms its claims (ClaimAck) once
// all of it, headers before it, has been flushed to the connection: never
// before the bytes left the process (an ack first could lose the messages
// to a crash in between), and as soon as possible after (a crash before the
// ack hands them out twice).
type ackOnWrite struct {
	body    []byte
	off     int  // bytes written
	flushed bool // written and flushed without error
	ids     []int64
	nc      *nats.Conn
	subject string
}

// Read is io.Reader, for a writer that does not take WriteTo; a body read
// this way is never acknowledged (it cannot know the flush), which
// TestClaimedAnswerAcksOnceWritten would catch.
func (w *ackOnWrite) Read(p []byte) (int, error) {
	if w.off >= len(w.body) {
		return 0, io.EOF
	}
	n := copy(p, w.body[w.off:])
	w.off += n
	return n, nil
}

// WriteTo is how fasthttp copies the body (dst is the connection's
// buffered writer): one write, then the flush fasthttp would do next
// anyway, so Close knows the answer left.
func (w *ackOnWrite) WriteTo(dst io.Writer) (int64, error) {
	n, err := dst.Write(w.body[w.off:])
	w.off += n
	if err == nil && w.off == len(w.body) {
		if f, ok := dst.(interface{ Flush() error }); ok {
			err = f.Flush()
			w.flushed = err == nil
		}
	}
	return int64(n), err
}

// Close is called by fasthttp once it is done with the body, written or
// not: the claims are confirmed only if all of it was flushed (never for
// HEAD, whose body fasthttp skips).
func (w *ackOnWrite) Close() error {
	if !w.flushed || w.ids == nil {
		return nil
	}
	data, err := events.Marshal(events.ClaimAck{ClaimIDs: w.ids})
	w.ids = nil
	if err == nil {
		// Core NATS, no reply: a lost ack only makes the queue hand the
		// messages out again after its confirm timeout.
		_ = w.nc.Publish(w.subject, data)
	}
	return nil
}
