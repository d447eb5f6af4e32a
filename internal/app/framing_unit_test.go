package app

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scriptConn is a net.Conn whose reads return data in the given pieces.
type scriptConn struct {
	net.Conn
	pieces [][]byte
}

func (c *scriptConn) Read(p []byte) (int, error) {
	for len(c.pieces) > 0 && len(c.pieces[0]) == 0 {
		c.pieces = c.pieces[1:]
	}
	if len(c.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.pieces[0])
	c.pieces[0] = c.pieces[0][n:]
	return n, nil
}

func (c *scriptConn) SetReadDeadline(time.Time) error { return nil }

func newTestConn(pieces ...[]byte) *framedConn {
	return &framedConn{Conn: &scriptConn{pieces: pieces}, m: newFramingMetrics(prometheus.NewRegistry())}
}

// split cuts s at random points.
func split(r *rand.Rand, s []byte) [][]byte {
	var out [][]byte
	for len(s) > 0 {
		n := 1 + r.IntN(min(len(s), 700))
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// Valid pipelined requests pass through unchanged however the client's
// bytes are cut, and no Read crosses the end of a request.
func TestFramedConnPassesValidStreams(t *testing.T) {
	reqs := []string{
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"\r\nPOST /api/t/queue HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		"POST /api/t/status HTTP/1.1\r\nhost: x\r\ntransfer-encoding: Chunked\r\n\r\n5;a=b; c=\"d e\"\r\nhello\r\n10\r\n" + strings.Repeat("z", 16) + "\r\n0\r\n\r\n",
		"PUT /x HTTP/1.0\r\nContent-Length: 3000\r\n\r\n" + strings.Repeat("b", 3000),
		"GET http://x/healthz?a=%20b HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-Utf8: \xc3\xa9\r\n\r\n",
		"DELETE /y HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	}
	stream := []byte(strings.Join(reqs, ""))
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		c := newTestConn(split(r, stream)...)
		var got []byte
		i, inReq := 0, 0 // request index, bytes of it read so far
		for {
			buf := make([]byte, 1+r.IntN(5000))
			n, err := c.Read(buf)
			if n == 0 && err == nil {
				t.Fatal("Read returned (0, nil)")
			}
			if n > 0 {
				if inReq+n > len(reqs[i]) {
					t.Fatalf("seed %d: a Read crossed the end of request %d", seed, i)
				}
				inReq += n
				if inReq == len(reqs[i]) {
					i, inReq = i+1, 0
				}
			}
			got = append(got, buf[:n]...)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("seed %d: %v", seed, err)
				}
				break
			}
		}
		if !bytes.Equal(got, stream) || c.fault != nil {
			t.Fatalf("seed %d: stream changed (fault %v):\n%q", seed, c.fault, got)
		}
	}
}

// While draining, a Read at the end of the request answers io.EOF and the
// next request stays for fasthttp.
func TestFramedConnDrainStopsAtBoundary(t *testing.T) {
	next := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	c := newTestConn([]byte("POST /q HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + next))
	head := make([]byte, 4096)
	n, err := c.Read(head)
	if err != nil || !bytes.HasSuffix(head[:n], []byte("0\r\n\r\n")) {
		t.Fatalf("first read: %q %v", head[:n], err)
	}
	c.draining = true
	if n, err := c.Read(head); n != 0 || !errors.Is(err, io.EOF) || !c.hitBoundary {
		t.Fatalf("draining read at the boundary: %d %v", n, err)
	}
	c.draining = false
	n, err = c.Read(head)
	if err != nil || string(head[:n]) != next {
		t.Fatalf("next request: %q %v", head[:n], err)
	}
}

// A rejected head reaches fasthttp as the poison only; a rejected chunk
// fails the body read.
func TestFramedConnRejects(t *testing.T) {
	c := newTestConn([]byte("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != string(poison) || c.fault != errMalformed {
		t.Fatalf("rejected head: %q %v %v", buf[:n], err, c.fault)
	}
	if _, err := c.Read(buf); !errors.Is(err, errFramingRejected) {
		t.Fatalf("after the poison: %v", err)
	}

	c = newTestConn([]byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n"))
	var got []byte
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if !errors.Is(err, errFramingRejected) || c.fault != errMalformed || bytes.Contains(got, poison) {
				t.Fatalf("rejected chunk: %q %v %v", got, err, c.fault)
			}
			break
		}
	}
	if !c.lingerWanted.Load() {
		t.Fatal("a rejected request does not linger on close")
	}
}

// BenchmarkFramedConn is the guard's cost per request: a typical queue
// request (head and a small JSON body) read through it.
func BenchmarkFramedConn(b *testing.B) {
	body := `[{"phone":"+15550000001","message":"Your order #1001 has shipped"}]`
	req := []byte("POST /api/" + strings.Repeat("a", 64) + "/queue HTTP/1.1\r\nHost: sms.example.com\r\n" +
		"User-Agent: shop-plugin/2.1\r\nContent-Type: application/json\r\nAccept: */*\r\n" +
		"Idempotency-Key: order-1001\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body)
	src := &scriptConn{}
	c := &framedConn{Conn: src, m: newFramingMetrics(prometheus.NewRegistry())}
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		src.pieces = append(src.pieces[:0], req)
		for n := 0; n < len(req); {
			k, err := c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			n += k
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
