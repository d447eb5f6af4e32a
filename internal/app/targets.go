package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/uptrace/bun"

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

// traits are what the process must know of a service besides building it.
type traits uint8

const (
	// ownsDB: the service has a database of its own (named after it),
	// opened before it is built and closed after it stopped.
	ownsDB traits = 1 << iota
	// operator: the service serves the operator API (/admin/v1), which
	// needs APITOSMS_ADMIN_TOKEN.
	operator
)

// target is one row of the targets table: a service the process can run.
type target struct {
	name   string
	traits traits
	// prepare reads the service's configuration (nothing starts) and
	// returns what builds the service from the shared infrastructure. Every
	// configuration is read before anything starts, so a bad setting is
	// refused at once; `apitosms -h` reads them all to list the variables.
	prepare func(r *config.Reader, c config.Common) builder
}

// builder builds a service from the shared infrastructure.
type builder func(ctx context.Context, in *infra) (service, error)

// newTarget makes a target from a service's config loader and its constructor;
// build gets the service's database (nil without ownsDB), opened by then.
func newTarget[C any, S service](name string, t traits, load func(*config.Reader, config.Common) C,
	build func(ctx context.Context, cfg C, in *infra, db *bun.DB) (S, error),
) target {
	return target{name: name, traits: t, prepare: func(r *config.Reader, c config.Common) builder {
		cfg := load(r, c)
		return func(ctx context.Context, in *infra) (service, error) {
			var db *bun.DB
			if t&ownsDB != 0 {
				var err error
				if db, err = in.db(ctx, name); err != nil {
					return nil, err
				}
			}
			return build(ctx, cfg, in, db)
		}
	}}
}

// lookupTarget returns the row of name.
func lookupTarget(name string) (target, bool) {
	i := slices.IndexFunc(targets, func(t target) bool { return t.name == name })
	if i < 0 {
		return target{}, false
	}
	return targets[i], true
}

// targetNames lists every target in start order.
func targetNames() []string {
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.name
	}
	return names
}

// anyTrait reports whether one of the named targets has trait t.
func anyTrait(names []string, t traits) bool {
	for _, n := range names {
		if tg, ok := lookupTarget(n); ok && tg.traits&t != 0 {
			return true
		}
	}
	return false
}

// parseTargets turns "all" or "ingress,queue" into start order.
func parseTargets(s string) ([]string, error) {
	if s == "" || s == "all" {
		return targetNames(), nil
	}
	order := targetNames()
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains(order, t) {
			known := slices.Sorted(slices.Values(order))
			return nil, fmt.Errorf("unknown target %q (known: all, %s)", t, strings.Join(known, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	return out, nil
}
