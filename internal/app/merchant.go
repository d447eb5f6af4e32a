package app

import (
	"context"
	"os"

	"github.com/apitosms/apitosms/internal/cli"
)

// merchantCommand adapts a merchant subcommand (internal/cli) to the
// process's command table.
func merchantCommand(run func(context.Context, cli.Env, []string) error) func(context.Context, Runtime, []string) error {
	return func(ctx context.Context, rt Runtime, args []string) error {
		return run(ctx, cli.Env{Getenv: rt.Getenv, Stdin: os.Stdin, Stdout: rt.Stdout, Stderr: rt.Stderr}, args)
	}
}
