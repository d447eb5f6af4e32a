package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// rawGet sends one request on its own connection and returns the answer as
// received.
func rawGet(t *testing.T, addr, method, path string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: test\r\n\r\n", method, path)
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// A get_messages answer with claims to confirm is the same, byte for byte
// and header for header, as c.JSON's (contract Part 1), and confirms its
// claims once written; a HEAD answer, which carries no body, confirms
// nothing.
func TestClaimedAnswerAcksOnceWritten(t *testing.T) {
	b := testkit.Embedded(t)
	nc, err := nats.Connect(b.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	acks := make(chan *nats.Msg, 8)
	if _, err := nc.ChanSubscribe(b.Names.QueueClaimAck(), acks); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	a := &API{nc: nc, names: b.Names}
	out := make([]message, 150) // larger than fasthttp's write buffer
	for i := range out {
		out[i] = message{Phone: fmt.Sprintf("+1555%07d", i), Text: fmt.Sprintf("Order #%d is \"ready\" — ünïcode <&>", i), Hash: "0123456789abcdef"}
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/plain", func(c *fiber.Ctx) error { return c.JSON(out) })
	app.Get("/claimed/:id", func(c *fiber.Ctx) error {
		id, _ := c.ParamsInt("id")
		return a.answerClaimed(c, out, []int64{int64(id), 99})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() { _ = app.Shutdown() }()
	addr := ln.Addr().String()

	wantRes, wantBody := rawGet(t, addr, "GET", "/plain")
	gotRes, gotBody := rawGet(t, addr, "GET", "/claimed/7")
	if string(gotBody) != string(wantBody) {
		t.Fatalf("body differs from c.JSON's:\n%s\nwant\n%s", gotBody, wantBody)
	}
	gotRes.Header.Del("Date")
	wantRes.Header.Del("Date")
	if gotRes.StatusCode != wantRes.StatusCode || !reflect.DeepEqual(gotRes.Header, wantRes.Header) ||
		!slices.Equal(gotRes.TransferEncoding, wantRes.TransferEncoding) || gotRes.ContentLength != wantRes.ContentLength {
		t.Fatalf("answer %d %v %v, want c.JSON's %d %v %v", gotRes.StatusCode, gotRes.Header, gotRes.TransferEncoding,
			wantRes.StatusCode, wantRes.Header, wantRes.TransferEncoding)
	}
	want := func(id int64) {
		t.Helper()
		select {
		case m := <-acks:
			var ack events.ClaimAck
			if err := events.Unmarshal(m.Data, &ack); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ack.ClaimIDs, []int64{id, 99}) {
				t.Fatalf("ack %v, want [%d 99]", ack.ClaimIDs, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no ack for claim %d", id)
		}
	}
	want(7)

	// HEAD: no body written, no ack; the next ack on the subject is the
	// following GET's (one connection publishes in order).
	if res, _ := rawGet(t, addr, "HEAD", "/claimed/8"); res.StatusCode != 200 {
		t.Fatalf("HEAD: %d", res.StatusCode)
	}
	rawGet(t, addr, "GET", "/claimed/9")
	want(9)
}
