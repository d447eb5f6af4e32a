// Command apitosms runs the SMS gateway: every service in one process by
// default (-target=all), or any subset against an external NATS cluster and
// PostgreSQL. See README.md and `apitosms help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/apitosms/apitosms/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, app.Runtime{Args: os.Args[1:], Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr}); err != nil {
		fmt.Fprintln(os.Stderr, "apitosms:", err)
		var usage *app.UsageError
		if errors.As(err, &usage) {
			os.Exit(2) // bad command line or configuration
		}
		os.Exit(1)
	}
}
