package guard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestCheckURLRefusesPrivateDestinations(t *testing.T) {
	g := New(false)
	for _, raw := range []string{
		"",
		"not a url",
		"/relative/path",
		"http://example.com/hook",        // plain http
		"ftp://example.com/",             // other scheme
		"https://user:pass@example.com/", // userinfo
		"https:///nohost",                // no host
		"https://127.0.0.1/",             // loopback
		"https://127.1.2.3:8443/x",       // loopback range
		"https://10.1.2.3/",              // RFC 1918
		"https://172.16.0.1/",            // RFC 1918
		"https://192.168.1.1/",           // RFC 1918
		"https://100.64.0.1/",            // CGNAT
		"https://169.254.169.254/latest", // link-local, cloud metadata
		"https://0.0.0.0/",               // unspecified
		"https://224.0.0.1/",             // multicast
		"https://[::1]/",                 // IPv6 loopback
		"https://[::]/",                  // IPv6 unspecified
		"https://[fd00::1]/",             // ULA
		"https://[fe80::1]/",             // IPv6 link-local
		"https://[::ffff:127.0.0.1]/",    // IPv4-mapped loopback
		"https://[::ffff:10.0.0.1]/",     // IPv4-mapped private
		"https://[64:ff9b::a9fe:a9fe]/",  // NAT64 of 169.254.169.254
		"https://2130706433/",            // decimal 127.0.0.1
		"https://0x7f000001/",            // hex 127.0.0.1
		"https://0177.0.0.1/",            // octal 127.0.0.1
		"https://127.1/",                 // short form
		"https://localhost/",             // resolves to loopback
		"https://localhost:99999/",       // bad port
		"https://example.com:0/",         // bad port
		"https://[fe80::1%25eth0]/",      // zone
	} {
		if u, err := g.CheckURL(context.Background(), raw); err == nil {
			t.Errorf("%q accepted as %q", raw, u)
		} else if ue := (*URLError)(nil); !errors.As(err, &ue) {
			t.Errorf("%q: error %T %v", raw, err, err)
		}
	}
}

func TestCheckURLAcceptsPublicAndUnresolvable(t *testing.T) {
	g := New(false)
	for raw, want := range map[string]string{
		"https://8.8.8.8/hook":                    "https://8.8.8.8/hook",
		"HTTPS://1.1.1.1:8443/a?b=c#frag":         "https://1.1.1.1:8443/a?b=c",
		"https://[2606:4700:4700::1111]/x":        "https://[2606:4700:4700::1111]/x",
		"https://does-not-exist.invalid/hook":     "https://does-not-exist.invalid/hook", // does not resolve: accepted
		"  https://does-not-exist.invalid/hook  ": "https://does-not-exist.invalid/hook",
	} {
		got, err := g.CheckURL(context.Background(), raw)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", raw, got, err, want)
		}
	}
	// The operator's switch lifts both rules.
	open := New(true)
	for _, raw := range []string{"http://127.0.0.1:8080/hook", "https://localhost/", "http://10.0.0.1/"} {
		if _, err := open.CheckURL(context.Background(), raw); err != nil {
			t.Errorf("allow-private: %q: %v", raw, err)
		}
	}
	if _, err := open.CheckURL(context.Background(), "ftp://x/"); err == nil {
		t.Error("allow-private accepted ftp")
	}
}

// The address actually dialled is checked: a URL that reaches a loopback
// server (as a rebound DNS name would) is refused at connect time.
func TestClientRefusesPrivateAddressAtConnect(t *testing.T) {
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = true }))
	defer srv.Close()
	resp, err := New(false).Client(2*time.Second, 2).Post(srv.URL, "application/json", nil)
	if err == nil {
		resp.Body.Close()
		t.Fatal("loopback receiver reached")
	}
	if !errors.Is(err, ErrBlocked) || hit {
		t.Fatalf("err %v, hit %v", err, hit)
	}
	// Allowed by the operator, the same request goes through.
	resp, err = New(true).Client(2*time.Second, 2).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !hit {
		t.Fatal("not reached with allow-private")
	}
}

// Redirects are answers, not followed.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	target := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/target" {
			target = true
			return
		}
		http.Redirect(w, r, "/target", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	resp, err := New(true).Client(2*time.Second, 2).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || target {
		t.Fatalf("status %d, followed %v", resp.StatusCode, target)
	}
}

func TestPublic(t *testing.T) {
	for s, want := range map[string]bool{
		"8.8.8.8": true, "2001:4860:4860::8888": true,
		"127.0.0.1": false, "::ffff:192.168.0.1": false, "100.127.255.255": false, "100.128.0.1": true,
		"172.31.255.255": false, "172.32.0.1": true, "255.255.255.255": false,
	} {
		if got := Public(netip.MustParseAddr(s)); got != want {
			t.Errorf("Public(%s) = %v", s, got)
		}
	}
}
