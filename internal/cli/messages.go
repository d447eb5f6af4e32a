package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
)

const messagesUsage = `apitosms messages [flags]

Pulls waiting messages as a phone does (get_messages), oldest first, and
prints them: hash, phone and text separated by tabs, or JSON with -json.
They are marked initiated and not handed out again: report them with
apitosms status.`

// Messages implements `apitosms messages`.
func Messages(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("apitosms messages", flag.ContinueOnError)
	var c common
	c.register(fs, env)
	limit := fs.Int("limit", 20, "at most this many messages (the server caps it at 200)")
	asJSON := fs.Bool("json", false, "print the JSON array as the server sent it")
	if err := parse(fs, env, args, messagesUsage); err != nil {
		return helpIsNoError(err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("messages: unexpected arguments %q", fs.Args())
	}
	if *limit < 1 {
		return fmt.Errorf("messages: -limit must be at least 1")
	}
	cl, ctx, cancel, err := c.client(ctx, env)
	if err != nil {
		return fmt.Errorf("messages: %w", err)
	}
	defer cancel()
	msgs, err := cl.GetMessages(ctx, *limit)
	if err != nil {
		return fmt.Errorf("messages: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(msgs)
	}
	// One message per line: tabs and line breaks inside a text are escaped.
	esc := strings.NewReplacer("\\", "\\\\", "\t", "\\t", "\n", "\\n", "\r", "\\r")
	for _, m := range msgs {
		fmt.Fprintf(env.Stdout, "%s\t%s\t%s\n", m.Hash, m.Phone, esc.Replace(m.Text))
	}
	fmt.Fprintf(env.Stderr, "%d messages handed out\n", len(msgs))
	return nil
}
