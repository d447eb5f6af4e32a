package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/apitosms/apitosms/libs/config"
)

// healthCommand: apitosms health [-url URL] [-timeout D] — GET /readyz of
// the local process (the one APITOSMS_HTTP_ADDR names) and exit 0 when it
// answers 200, 1 otherwise. Container HEALTHCHECKs use it: the image has
// no shell or curl.
func healthCommand(ctx context.Context, rt Runtime, args []string) error {
	fs := flag.NewFlagSet("apitosms health", flag.ContinueOnError)
	fs.SetOutput(rt.Stderr)
	addr := config.ReadCommon(config.NewReader(rt.Getenv)).HTTPAddr
	url := fs.String("url", readyzURL(addr), "readiness URL to check (default: /readyz on APITOSMS_HTTP_ADDR)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("health: unexpected arguments %q", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: not ready: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: not ready: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(rt.Stdout, strings.TrimSpace(string(body)))
	return nil
}

// readyzURL turns a listen address (":8080", "0.0.0.0:8080", "[::]:8080")
// into the loopback URL of its /readyz.
func readyzURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/readyz"
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}
