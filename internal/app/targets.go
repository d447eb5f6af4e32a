package app

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"
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

// module builds one service from the shared infrastructure.
type module struct {
	needsDB bool
	build   func(ctx context.Context, in *infra) (service, error)
}

// targets maps target names to modules; "all" means every one of them.
var targets = map[string]module{
	"billing":  {needsDB: true, build: buildBilling},
	"queue":    {needsDB: true, build: buildQueue},
	"status":   {needsDB: true, build: buildStatus},
	"releases": {needsDB: true, build: buildReleases},
	"webhooks": {needsDB: true, build: buildWebhooks},
	"ingress":  {build: buildIngress},
}

// order is the start order; services stop in reverse.
var order = []string{"billing", "queue", "status", "releases", "webhooks", "ingress"}

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
