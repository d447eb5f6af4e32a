// Package cli holds the merchant subcommands of the apitosms binary (send,
// status, messages), built on the Go client (package client). They talk to a
// running server over its public API; see docs/api.md, "Go client and CLI".
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/apitosms/apitosms/client"
)

// Env is what a subcommand gets from the process.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// common are the flags every subcommand has.
type common struct {
	url     string
	token   string
	timeout time.Duration
	retries int
}

func (c *common) register(fs *flag.FlagSet, env Env) {
	url := env.Getenv("APITOSMS_URL")
	if url == "" {
		url = "http://localhost:8080"
	}
	fs.StringVar(&c.url, "url", url, "server base URL (env APITOSMS_URL)")
	fs.StringVar(&c.token, "token", "", "the account's API token (default: env APITOSMS_TOKEN, which other users cannot see)")
	fs.DurationVar(&c.timeout, "timeout", 0, "give up after this long (0: no limit)")
	fs.IntVar(&c.retries, "retries", client.DefaultRetries, "retries of a request on 429/503 and transport errors")
}

// client builds the API client; ctx gets the -timeout.
func (c *common) client(ctx context.Context, env Env) (*client.Client, context.Context, context.CancelFunc, error) {
	tok := c.token
	if tok == "" {
		tok = env.Getenv("APITOSMS_TOKEN")
	}
	if tok == "" {
		return nil, nil, nil, errors.New("no API token: set APITOSMS_TOKEN (or -token)")
	}
	cl, err := client.New(c.url, tok, client.WithRetries(c.retries), client.WithUserAgent("apitosms-cli/1"))
	if err != nil {
		return nil, nil, nil, err
	}
	cancel := context.CancelFunc(func() {})
	if c.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	return cl, ctx, cancel, nil
}

// parse parses args, with usage text on stderr.
func parse(fs *flag.FlagSet, env Env, args []string, usage string) error {
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs.Parse(args)
}

// helpIsNoError turns -h into a clean exit.
func helpIsNoError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
