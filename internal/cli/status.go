package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/apitosms/apitosms/client"
)

const statusUsage = `apitosms status [flags] HASH[:sent|:failed]...

Reports outcomes as a phone does: each HASH (from send or messages) is set to
sent or failed (-status for hashes without one). Repeating a report is safe.`

// Status implements `apitosms status`.
func Status(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("apitosms status", flag.ContinueOnError)
	var c common
	c.register(fs, env)
	device := fs.String("device", "apitosms-cli", "the reporting phone's name (cut to 15 characters by the server)")
	def := fs.String("status", "sent", "outcome of hashes given without one: sent or failed")
	if err := parse(fs, env, args, statusUsage); err != nil {
		return helpIsNoError(err)
	}
	defStatus, ok := outcome(*def)
	if !ok {
		return fmt.Errorf("status: -status must be sent or failed, not %q", *def)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("status: no hashes given")
	}
	reports := make([]client.Report, fs.NArg())
	for i, a := range fs.Args() {
		hash, st, has := strings.Cut(a, ":")
		s := defStatus
		if has {
			if s, ok = outcome(st); !ok {
				return fmt.Errorf("status: %q: the outcome must be sent, failed, 2 or 3", a)
			}
		}
		reports[i] = client.Report{Hash: hash, Status: s}
	}
	cl, ctx, cancel, err := c.client(ctx, env)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer cancel()
	res, err := cl.Status(ctx, *device, reports)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(env.Stdout, "%s: %s\n", reports[e.Index].Hash, e.Error)
	}
	fmt.Fprintf(env.Stdout, "updated %d of %d\n", res.Updated, len(reports))
	if len(res.Errors) > 0 {
		return fmt.Errorf("status: %d of %d reports refused", len(res.Errors), len(reports))
	}
	return nil
}

func outcome(s string) (int, bool) {
	switch strings.ToLower(s) {
	case "sent", "2":
		return client.StatusSent, true
	case "failed", "3":
		return client.StatusFailed, true
	}
	return 0, false
}
