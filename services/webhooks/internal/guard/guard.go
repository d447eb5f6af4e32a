// Package guard keeps webhook deliveries from reaching the deployment's own
// network (SSRF): a URL is checked when an endpoint is saved, and the address
// actually dialled is checked again on every connection, so a name that
// resolved to a public address at creation and to 127.0.0.1 later (DNS
// rebinding) is still refused. The operator may lift both rules
// (APITOSMS_WEBHOOK_ALLOW_PRIVATE=true) for on-premises receivers and tests.
package guard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// MaxURLLength bounds an endpoint URL.
const MaxURLLength = 2048

// Guard checks URLs and dials for one policy.
type Guard struct {
	allowPrivate bool
	resolver     *net.Resolver
}

// New returns a guard; allowPrivate lifts both the https and the
// public-address rules.
func New(allowPrivate bool) *Guard {
	return &Guard{allowPrivate: allowPrivate, resolver: net.DefaultResolver}
}

// URLError says why a URL is refused (the sentence is safe to show).
type URLError struct{ Reason string }

func (e *URLError) Error() string { return e.Reason }

func refuse(format string, args ...any) error {
	return &URLError{Reason: fmt.Sprintf(format, args...)}
}

// CheckURL returns the normalised URL if it may receive webhooks, or a
// *URLError. A host that does not resolve is accepted (deliveries retry, and
// every connection is checked anyway).
func (g *Guard) CheckURL(ctx context.Context, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", refuse("url is required")
	}
	if len(raw) > MaxURLLength {
		return "", refuse("url is longer than %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return "", refuse("url must be an absolute https:// URL")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && g.allowPrivate:
	default:
		return "", refuse("url must be an absolute https:// URL")
	}
	if u.User != nil {
		return "", refuse("url must not contain a user name or password")
	}
	host := u.Hostname()
	if host == "" {
		return "", refuse("url must name a host")
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 {
			return "", refuse("url has an invalid port")
		}
	}
	u.Fragment, u.RawFragment = "", ""
	if g.allowPrivate {
		return u.String(), nil
	}
	if strings.Contains(host, "%") {
		return "", refuse("url must not carry an IPv6 zone")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !Public(ip) {
			return "", refuse("url must not point to a loopback, private, link-local or reserved address")
		}
		return u.String(), nil
	}
	// A host whose last label is numeric is an IPv4 address in some other
	// spelling (2130706433, 0x7f.1, 0177.0.0.1); resolvers disagree on what
	// they mean, so only the canonical dotted quad (parsed above) is taken.
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if last := labels[len(labels)-1]; numeric(last) {
		return "", refuse("url host must be a name or a canonical IP address")
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := g.resolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		return u.String(), nil // does not resolve (yet): every dial is checked
	}
	for _, a := range addrs {
		if !Public(a) {
			return "", refuse("url must not point to a loopback, private, link-local or reserved address")
		}
	}
	return u.String(), nil
}

// numeric reports whether a label reads as a number (decimal, octal or hex).
func numeric(label string) bool {
	if label == "" {
		return false
	}
	l := strings.ToLower(label)
	if strings.HasPrefix(l, "0x") {
		l = l[2:]
		for _, c := range l {
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
		return true
	}
	for _, c := range l {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var blocked = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network", unspecified
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // carrier-grade NAT
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, broadcast
		"::/128",          // unspecified
		"::1/128",         // loopback
		"100::/64",        // discard
		"2001:db8::/32",   // documentation
		"fc00::/7",        // unique local
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// nat64 embeds an IPv4 address in its last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Public reports whether ip is a globally routable unicast address that a
// webhook may reach.
func Public(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	if ip.Is6() && ip.Is4In6() {
		ip = ip.Unmap()
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// ErrBlocked is returned by a dial to an address the policy refuses.
var ErrBlocked = errors.New("destination address is not public")

// control runs after the name is resolved and before the socket connects,
// with the very address being dialled.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	if g.allowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrBlocked, address)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrBlocked, ap.Addr())
	}
	return nil
}

// Client returns the HTTP client deliveries use: every connection checked
// by the policy, no proxy from the environment, redirects not followed (a
// 3xx is the answer), timeout per request.
func (g *Guard) Client(timeout time.Duration, maxConnsPerHost int) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   max(maxConnsPerHost, 2),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
