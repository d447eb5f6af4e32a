package app

// HTTP framing guard. fasthttp (under fiber) parses HTTP/1.1 leniently: it
// takes the last of two different Content-Length headers, lets
// Transfer-Encoding silently win over Content-Length, joins folded header
// lines, accepts bare LF and bare CR, skips anything up to CR in a chunk
// extension (LF included) and wraps an over-long Content-Length. Each of these
// lets a front proxy and this server disagree on where a request ends, which
// is request smuggling. fasthttp has no strict mode, so every accepted
// connection is wrapped in a framedConn that reads the request stream before
// fasthttp does and hands it over only once it is valid under RFC 9112:
//
//   - a request head is handed over whole, and only after every line of it
//     was checked (request line, field names and values, CRLF endings, no
//     obs-fold, one Host, framing headers unambiguous);
//   - a body is counted (Content-Length) or parsed (chunked: sizes,
//     extensions, CRLFs, no trailer fields), so the guard always knows where
//     the request ends;
//   - a Read never returns bytes past the end of the current request, so
//     what fasthttp has buffered belongs to the request being served.
//
// A head that fails is replaced by a request line fasthttp itself rejects, so
// fasthttp's own error path answers (in order, after earlier pipelined
// answers) and closes the connection; the server's error handler asks the
// conn why (fault) and answers with the contract's JSON. A bad chunk fails
// the body read and the answer is replaced the same way (finishRequest).
//
// The last point makes the end of a handler safe: finishRequest drains what
// the handler left of the body (bounded) so the connection can be reused,
// or closes it; while it drains, a Read at the end of the request answers
// io.EOF instead of starting the next one, so even fasthttp's chunked reader,
// which would otherwise parse the next request as a chunk size, stops there.
//
// Closing is lingering (as nginx and Apache do): the write side is shut
// first and what the client still sends is read and dropped for a bounded
// time, so a client that is still writing a refused body (413, 401, ...)
// reads the answer instead of a connection reset.

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitosms/apitosms/libs/apperr"
)

const (
	// maxHeadBytes bounds a request head (request line and fields, the
	// blank line included); fasthttp's read buffer is sized to match so a
	// head the guard accepts always fits it.
	maxHeadBytes = 4096
	// maxChunkLine bounds a chunk-size line with its extensions.
	maxChunkLine = 1024
	// maxChunkHex is the most hex digits of a chunk size fasthttp parses
	// (maxHexIntChars on 64-bit platforms).
	maxChunkHex = 15
	// maxLengthDigits keeps a Content-Length within what fasthttp parses
	// without wrapping around.
	maxLengthDigits = 18

	// lingerTotal and lingerIdle bound a lingering close (nginx's
	// lingering_time and lingering_timeout defaults).
	lingerTotal = 30 * time.Second
	lingerIdle  = 5 * time.Second
)

// Framing faults, answered by the server (never echoing the request) with
// the connection closed afterwards.
var (
	errMalformed       = apperr.New(http.StatusBadRequest, "bad_request", "Malformed HTTP request")
	errHeadTooLarge    = apperr.New(http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "Request headers too large")
	errUnsupportedTE   = apperr.New(http.StatusNotImplemented, "unsupported_transfer_encoding", "Unsupported Transfer-Encoding")
	errVersion         = apperr.New(http.StatusHTTPVersionNotSupported, "http_version_not_supported", "HTTP version not supported")
	errRequestTimeout  = apperr.New(http.StatusRequestTimeout, "request_timeout", "Request timeout")
	errMethodNotImpl   = apperr.New(http.StatusNotImplemented, "not_implemented", "Method not implemented")
	errFramingRejected = errors.New("http framing rejected")
)

// poison is handed to fasthttp in place of a rejected head: a request line
// starting with a space, which fasthttp refuses before reading anything else.
var poison = []byte(" \r\n\r\n")

// requestPending reports whether part of the current request has not been
// received yet (the serving goroutine only).
func (c *framedConn) requestPending() bool { return c.st != stHead }

// reader states: what the guard expects next.
type readState uint8

const (
	stHead      readState = iota // a request head (or the peer's close)
	stBody                       // remaining bytes of a Content-Length body
	stChunkLine                  // a chunk-size line
	stChunkData                  // remaining bytes of a chunk
	stChunkCRLF                  // the CRLF after a chunk's data
	stTrailer                    // the blank line ending a chunked body
	stFault                      // rejected: poison, then nothing
)

// framingListener wraps every accepted connection in a framedConn.
type framingListener struct {
	net.Listener
	m *framingMetrics
}

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framedConn{Conn: c, m: l.m}, nil
}

// framedConn is one client connection seen through the framing guard. Read
// is called by fasthttp's serving goroutine only (the handler runs on it
// too), so the reader state needs no lock; Close may come from elsewhere.
type framedConn struct {
	net.Conn
	m *framingMetrics

	pend  []byte // received from the client and not yet handed over: pend[off:]
	off   int
	ready int // pend[off:off+ready] is checked and may be handed over
	hold  int // the next hold bytes are checked head lines, held until the head is whole

	st        readState
	remaining int64 // stBody, stChunkData: bytes left
	inHead    headState

	fault       *apperr.Error // why the stream was rejected
	poisonSent  int
	draining    bool // finishRequest is draining: stop at the end of the request
	hitBoundary bool // a draining Read reached the end of the request

	// lingerWanted: the client may still be sending this request when the
	// connection is closed (set by the serving goroutine before it closes).
	lingerWanted atomic.Bool
	closing      atomic.Bool
}

// headState is what the lines of the head seen so far said.
type headState struct {
	started   bool // the request line was seen (leading blank lines skipped)
	http10    bool
	hosts     int
	lengths   int
	length    int64
	lengthRaw [maxLengthDigits]byte
	lengthLen int
	chunked   int // Transfer-Encoding fields (each must be exactly "chunked")
}

// Read hands fasthttp the checked part of the request stream, never past the
// end of the current request, and never (0, nil).
func (c *framedConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.ready > 0 {
			n := copy(p, c.pend[c.off:c.off+c.ready])
			c.off += n
			c.ready -= n
			return n, nil
		}
		switch c.st {
		case stFault:
			if c.poisonSent < len(poison) {
				n := copy(p, poison[c.poisonSent:])
				c.poisonSent += n
				return n, nil
			}
			return 0, errFramingRejected
		case stBody, stChunkData:
			if c.off < len(c.pend) {
				c.advance()
				continue
			}
			// Nothing buffered: read the body straight into p, never past
			// its end.
			want := int64(len(p))
			if want > c.remaining {
				want = c.remaining
			}
			n, err := c.Conn.Read(p[:want])
			c.remaining -= int64(n)
			if c.remaining == 0 {
				c.endData()
			}
			if n == 0 && err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		default:
			if c.st == stHead && c.draining {
				// The request was handed over whole; what follows is the
				// next one, not the drain's business.
				c.hitBoundary = true
				return 0, io.EOF
			}
			if c.advance() {
				continue
			}
			if err := c.fill(); err != nil {
				if c.st != stHead || c.hold > 0 || c.off < len(c.pend) {
					// The client went away mid-request.
					if errors.Is(err, io.EOF) {
						err = io.ErrUnexpectedEOF
					}
				}
				return 0, err
			}
		}
	}
}

// fill reads more of the stream into pend; a full buffer with no complete
// line means the line (or head) is too long.
func (c *framedConn) fill() error {
	if c.pend == nil {
		c.pend = make([]byte, 0, maxHeadBytes)
	}
	if c.off > 0 {
		n := copy(c.pend[:cap(c.pend)], c.pend[c.off:])
		c.pend = c.pend[:n]
		c.off = 0
	}
	if len(c.pend) == cap(c.pend) {
		if c.st == stHead {
			c.reject(errHeadTooLarge, "head_too_large")
		} else {
			c.reject(errMalformed, "chunk")
		}
		return nil
	}
	for {
		n, err := c.Conn.Read(c.pend[len(c.pend):cap(c.pend)])
		c.pend = c.pend[:len(c.pend)+n]
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// advance checks as much of pend as it can without crossing the end of the
// current request, moving checked bytes to ready. It reports whether it made
// progress (or rejected the stream); false means it needs more bytes.
func (c *framedConn) advance() bool {
	progressed := false
	for {
		start := c.off + c.ready + c.hold
		rest := c.pend[start:]
		switch c.st {
		case stFault:
			return true
		case stBody, stChunkData:
			if len(rest) == 0 {
				return progressed
			}
			k := int64(len(rest))
			if k > c.remaining {
				k = c.remaining
			}
			c.ready += int(k)
			c.remaining -= k
			progressed = true
			if c.remaining > 0 {
				return true
			}
			if c.endData() {
				return true // end of the request: stop here
			}
		case stChunkCRLF:
			if len(rest) < 2 {
				if len(rest) == 1 && rest[0] != '\r' {
					c.reject(errMalformed, "chunk")
					return true
				}
				return progressed
			}
			if rest[0] != '\r' || rest[1] != '\n' {
				c.reject(errMalformed, "chunk")
				return true
			}
			c.ready += 2
			c.st = stChunkLine
			progressed = true
		default: // line-oriented: stHead, stChunkLine, stTrailer
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				if c.st == stChunkLine && len(rest) > maxChunkLine {
					c.reject(errMalformed, "chunk")
					return true
				}
				return progressed
			}
			if i == 0 || rest[i-1] != '\r' {
				c.reject(errMalformed, "bare_lf")
				return true
			}
			line := rest[:i-1]
			progressed = true
			switch c.st {
			case stHead:
				if done := c.headLine(line, i+1); done || c.st == stFault {
					return true
				}
			case stChunkLine:
				if len(line) > maxChunkLine {
					c.reject(errMalformed, "chunk")
					return true
				}
				size, ok := chunkSize(line)
				if !ok {
					c.reject(errMalformed, "chunk")
					return true
				}
				c.ready += i + 1
				if size == 0 {
					c.st = stTrailer
				} else {
					c.st, c.remaining = stChunkData, size
				}
			case stTrailer:
				if len(line) != 0 {
					// Trailer fields are refused: nothing here uses them,
					// and fasthttp mis-parses some (a name starting with 0).
					c.reject(errMalformed, "trailer")
					return true
				}
				c.ready += 2
				c.st = stHead
				return true // end of the request
			}
		}
	}
}

// endData moves on after a Content-Length body or a chunk's data; true
// when that ended the request.
func (c *framedConn) endData() bool {
	if c.st == stBody {
		c.st = stHead
		return true
	}
	c.st = stChunkCRLF
	return false
}

// headLine checks one line of a request head (n bytes with its CRLF). At
// the blank line the whole head becomes ready and the body's framing is set;
// it reports whether the request ended there (no body).
func (c *framedConn) headLine(line []byte, n int) bool {
	h := &c.inHead
	if c.hold+n > maxHeadBytes {
		c.reject(errHeadTooLarge, "head_too_large")
		return false
	}
	c.hold += n
	switch {
	case !h.started && len(line) == 0:
		// RFC 9112 §2.2: blank lines before a request line are ignored
		// (fasthttp skips them too).
		return false
	case !h.started:
		h.started = true
		if e, reason := requestLine(line, h); e != nil {
			c.reject(e, reason)
		}
		return false
	case len(line) != 0:
		if e, reason := fieldLine(line, h); e != nil {
			c.reject(e, reason)
		}
		return false
	}
	// Blank line: the head is whole.
	switch {
	case h.chunked > 0 && h.lengths > 0:
		c.reject(errMalformed, "te_and_length")
		return false
	case h.chunked > 0 && h.http10:
		c.reject(errMalformed, "transfer_encoding")
		return false
	case !h.http10 && h.hosts != 1:
		c.reject(errMalformed, "host")
		return false
	}
	c.ready += c.hold
	c.hold = 0
	chunked, length := h.chunked > 0, h.length
	*h = headState{}
	c.m.requests.Inc()
	switch {
	case chunked:
		c.st = stChunkLine
		return false
	case length > 0:
		c.st, c.remaining = stBody, length
		return false
	}
	c.st = stHead
	return true
}

// reject stops the stream: fasthttp gets the poison, the client the answer
// for e, and the connection is closed.
func (c *framedConn) reject(e *apperr.Error, reason string) {
	if c.st != stHead {
		// Mid-body: the body read fails instead (no poison in a body).
		c.poisonSent = len(poison)
	}
	c.fault = e
	c.lingerWanted.Store(true)
	c.st = stFault
	c.ready, c.hold = 0, 0
	c.m.rejected.WithLabelValues(reason).Inc()
}

// requestLine checks method SP request-target SP HTTP-version.
func requestLine(l []byte, h *headState) (*apperr.Error, string) {
	sp := bytes.IndexByte(l, ' ')
	if sp <= 0 || !isToken(l[:sp]) {
		return errMalformed, "request_line"
	}
	rest := l[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return errMalformed, "request_line"
	}
	for _, b := range rest[:sp] {
		if b <= ' ' || b == 0x7f {
			return errMalformed, "request_line"
		}
	}
	switch v := rest[sp+1:]; {
	case string(v) == "HTTP/1.1":
	case string(v) == "HTTP/1.0":
		h.http10 = true
	case len(v) == 8 && string(v[:5]) == "HTTP/" && isDigit(v[5]) && v[6] == '.' && isDigit(v[7]):
		return errVersion, "version"
	default:
		return errMalformed, "request_line"
	}
	return nil, ""
}

// fieldLine checks name ":" OWS value OWS and records the fields that decide
// framing.
func fieldLine(l []byte, h *headState) (*apperr.Error, string) {
	if l[0] == ' ' || l[0] == '\t' {
		return errMalformed, "obs_fold"
	}
	colon := bytes.IndexByte(l, ':')
	if colon <= 0 || !isToken(l[:colon]) {
		return errMalformed, "field_name"
	}
	name, value := l[:colon], trimOWS(l[colon+1:])
	for _, b := range value {
		if b < ' ' && b != '\t' || b == 0x7f {
			return errMalformed, "field_value" // bare CR, NUL, other controls
		}
	}
	switch {
	case equalFold(name, "content-length"):
		if len(value) == 0 || len(value) > maxLengthDigits {
			return errMalformed, "content_length"
		}
		var n int64
		for _, b := range value {
			if !isDigit(b) {
				return errMalformed, "content_length"
			}
			n = n*10 + int64(b-'0')
		}
		if h.lengths > 0 && !bytes.Equal(value, h.lengthRaw[:h.lengthLen]) {
			return errMalformed, "content_length" // RFC 9112 §6.3: 400, then close
		}
		h.lengths++
		h.length = n
		h.lengthLen = copy(h.lengthRaw[:], value)
	case equalFold(name, "transfer-encoding"):
		h.chunked++
		if h.chunked > 1 {
			return errMalformed, "transfer_encoding"
		}
		if !equalFold(value, "chunked") {
			return errUnsupportedTE, "transfer_encoding"
		}
	case equalFold(name, "host"):
		h.hosts++
	}
	return nil, ""
}

// chunkSize parses 1*HEXDIG [ chunk-ext ] (the extensions are checked for
// controls, not interpreted).
func chunkSize(l []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(l); i++ {
		d, ok := hexDigit(l[i])
		if !ok {
			break
		}
		n = n<<4 | int64(d)
	}
	if i == 0 || i > maxChunkHex {
		return 0, false
	}
	ext := trimOWS(l[i:])
	if len(ext) > 0 && ext[0] != ';' {
		return 0, false
	}
	for _, b := range ext {
		if b < ' ' && b != '\t' || b == 0x7f {
			return 0, false
		}
	}
	return n, true
}

// Close closes the connection. When the client may still be sending the
// current request (lingerWanted), the close lingers: the answer already
// written is followed by FIN, and what the client still sends is read and
// dropped (in the background, bounded) before the socket is closed, so the
// client reads the answer instead of a reset. Idle connections (shutdown,
// idle timeout) close at once.
func (c *framedConn) Close() error {
	if !c.closing.CompareAndSwap(false, true) {
		return nil
	}
	if !c.lingerWanted.Load() {
		return c.Conn.Close()
	}
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return c.Conn.Close()
	}
	go c.linger()
	return nil
}

var lingerBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (c *framedConn) linger() {
	defer c.Conn.Close()
	buf := lingerBufs.Get().(*[]byte)
	defer lingerBufs.Put(buf)
	end := time.Now().Add(lingerTotal)
	for {
		d := time.Now().Add(lingerIdle)
		if d.After(end) {
			d = end
		}
		if c.Conn.SetReadDeadline(d) != nil {
			return
		}
		if _, err := c.Conn.Read(*buf); err != nil {
			return
		}
	}
}

// framingMetrics counts what the guard saw; reasons are a fixed set.
type framingMetrics struct {
	requests prometheus.Counter
	rejected *prometheus.CounterVec
	closed   *prometheus.CounterVec
}

func newFramingMetrics(reg prometheus.Registerer) *framingMetrics {
	m := &framingMetrics{
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_http_framing_requests_total",
			Help: "Request heads checked and accepted by the HTTP framing guard.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitosms_http_framing_rejected_total",
			Help: "Requests refused by the HTTP framing guard (answered 4xx/5xx, connection closed), by reason.",
		}, []string{"reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitosms_http_unread_body_total",
			Help: "Requests whose handler left part of the body unread: drained (connection kept) or closed.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.rejected, m.closed)
	return m
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

func hexDigit(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

// tchar (RFC 9110 §5.6.2).
var tchars = func() (t [256]bool) {
	for _, b := range []byte("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t[b] = true
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tchars[c] {
			return false
		}
	}
	return len(b) > 0
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares ASCII case-insensitively with a lower-case s.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
