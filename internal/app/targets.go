package app

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/config"
)

// service is what every service's face offers to the process.
type service interface {
	Run(ctx context.Context) error
	Ready(ctx context.Context) error
}

// router is a service that serves HTTP.
type router interface {
	Routes(r fiber.Router)
}

// module is one service the process can run.
type module struct {
	needsDB bool
	// prepare reads the service's configuration (nothing starts) and
	// returns what builds the service from the shared infrastructure. Every
	// configuration is read before anything starts, so a bad setting is
	// refused at once; `apitosms -h` reads them all to list the variables.
	prepare func(r *config.Reader, c config.Common) builder
}

// builder builds a service from the shared infrastructure.
type builder func(ctx context.Context, in *infra) (service, error)

// targets maps target names to modules; "all" means every one of them.
var targets = map[string]module{
	"billing":  {needsDB: true, prepare: prepareBilling},
	"queue":    {needsDB: true, prepare: prepareQueue},
	"status":   {needsDB: true, prepare: prepareStatus},
	"releases": {needsDB: true, prepare: prepareReleases},
	"webhooks": {needsDB: true, prepare: prepareWebhooks},
	"stores":   {needsDB: true, prepare: prepareStores},
	"console":  {needsDB: true, prepare: prepareConsole},
	"ingress":  {prepare: prepareIngress},
}

// order is the start order; services stop in reverse.
var order = []string{"billing", "queue", "status", "releases", "webhooks", "stores", "console", "ingress"}

// parseTargets turns "all" or "ingress,queue" into start order.
func parseTargets(s string) ([]string, error) {
	if s == "" || s == "all" {
		return order, nil
	}
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if _, ok := targets[t]; !ok {
			names := make([]string, 0, len(targets))
			for n := range targets {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("unknown target %q (known: all, %s)", t, strings.Join(names, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	return out, nil
}
