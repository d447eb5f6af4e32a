package app

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/services/billing"
	"github.com/apitosms/apitosms/services/console"
	"github.com/apitosms/apitosms/services/ingress"
	"github.com/apitosms/apitosms/services/queue"
	"github.com/apitosms/apitosms/services/releases"
	"github.com/apitosms/apitosms/services/status"
	"github.com/apitosms/apitosms/services/stores"
	"github.com/apitosms/apitosms/services/webhooks"
)

// targets is every service the process can run, one row each, in start
// order (services stop in reverse); -target=all runs them all. Adding a
// service is adding a row: the target list, `all`, the -target flag's help,
// the environment in `apitosms -h` and the health answer all read this table.
var targets = []target{
	newTarget("billing", ownsDB|operator, billing.LoadConfig,
		func(ctx context.Context, cfg billing.Config, in *infra, db *bun.DB) (*billing.Service, error) {
			return billing.New(ctx, cfg, billing.Deps{Broker: in.broker, DB: db, Names: in.names, Registerer: in.reg, Log: in.log})
		}),
	newTarget("queue", ownsDB, queue.LoadConfig,
		func(ctx context.Context, cfg queue.Config, in *infra, db *bun.DB) (*queue.Service, error) {
			// On SQLite, tracking reads take a read-only pool of their own so
			// they never wait for (nor hold up) the writer's one connection.
			var reader *bun.DB
			if in.common.DatabaseURL == "" {
				var err error
				reader, err = database.OpenReader(ctx, database.Config{DataDir: in.common.DataDir, Service: "queue"}, queueReaders)
				if err != nil {
					return nil, err
				}
				in.dbs["queue-reader"] = reader // closed with the others
			}
			return queue.New(ctx, cfg, queue.Deps{Broker: in.broker, DB: db, Reader: reader, Names: in.names, Registerer: in.reg, Log: in.log})
		}),
	newTarget("status", ownsDB, status.LoadConfig,
		func(ctx context.Context, cfg status.Config, in *infra, db *bun.DB) (*status.Service, error) {
			return status.New(ctx, cfg, status.Deps{Broker: in.broker, DB: db, Names: in.names, Registerer: in.reg, Log: in.log})
		}),
	newTarget("releases", ownsDB|operator, releases.LoadConfig,
		func(ctx context.Context, cfg releases.Config, in *infra, db *bun.DB) (*releases.Service, error) {
			return releases.New(ctx, cfg, releases.Deps{Broker: in.broker, DB: db, Names: in.names, Registerer: in.reg, Log: in.log})
		}),
	newTarget("webhooks", ownsDB, webhooks.LoadConfig,
		func(ctx context.Context, cfg webhooks.Config, in *infra, db *bun.DB) (*webhooks.Service, error) {
			return webhooks.New(ctx, cfg, webhooks.Deps{Broker: in.broker, DB: db, Names: in.names, Replicas: in.common.Replicas, Registerer: in.reg, Log: in.log})
		}),
	newTarget("stores", ownsDB, stores.LoadConfig,
		func(ctx context.Context, cfg stores.Config, in *infra, db *bun.DB) (*stores.Service, error) {
			return stores.New(ctx, cfg, stores.Deps{Broker: in.broker, DB: db, Names: in.names, Replicas: in.common.Replicas, Registerer: in.reg, Log: in.log})
		}),
	newTarget("console", ownsDB, console.LoadConfig,
		func(ctx context.Context, cfg console.Config, in *infra, db *bun.DB) (*console.Service, error) {
			return console.New(ctx, cfg, console.Deps{Broker: in.broker, DB: db, Names: in.names, Replicas: in.common.Replicas, Registerer: in.reg, Log: in.log})
		}),
	newTarget("ingress", 0, ingress.LoadConfig,
		func(ctx context.Context, cfg ingress.Config, in *infra, _ *bun.DB) (*ingress.Service, error) {
			return ingress.New(ctx, cfg, ingress.Deps{Broker: in.broker, Names: in.names, Registerer: in.reg, Log: in.log})
		}),
}

// queueReaders is the size of the queue's read-only SQLite pool.
const queueReaders = 4
