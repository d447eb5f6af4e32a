package app

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/config"
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

func prepareBilling(r *config.Reader, c config.Common) builder {
	cfg := billing.LoadConfig(r, c)
	return func(ctx context.Context, in *infra) (service, error) {
		return billing.New(ctx, cfg, billing.Deps{
			Broker: in.broker, DB: in.dbs["billing"], Names: in.names, Registerer: in.reg, Log: in.log,
		})
	}
}

func prepareQueue(r *config.Reader, c config.Common) builder {
	cfg := queue.LoadConfig(r, c)
	return func(ctx context.Context, in *infra) (service, error) {
		// On SQLite, tracking reads take a read-only pool of their own so they
		// never wait for (nor hold up) the writer's one connection.
		var reader *bun.DB
		if in.common.DatabaseURL == "" {
			var err error
			reader, err = database.OpenReader(ctx, database.Config{DataDir: in.common.DataDir, Service: "queue"}, queueReaders)
			if err != nil {
				return nil, err
			}
			in.dbs["queue-reader"] = reader
		}
		return queue.New(ctx, cfg, queue.Deps{
			Broker: in.broker, DB: in.dbs["queue"], Reader: reader, Names: in.names, Registerer: in.reg, Log: in.log,
		})
	}
}

// queueReaders is the size of the queue's read-only SQLite pool.
const queueReaders = 4

func prepareStatus(r *config.Reader, c config.Common) builder {
	cfg := status.LoadConfig(r, c)
	return func(ctx context.Context, in *infra) (service, error) {
		return status.New(ctx, cfg, status.Deps{
			Broker: in.broker, DB: in.dbs["status"], Names: in.names, Registerer: in.reg, Log: in.log,
		})
	}
}

func prepareReleases(r *config.Reader, c config.Common) builder {
	cfg := releases.LoadConfig(r, c)
	return func(ctx context.Context, in *infra) (service, error) {
		return releases.New(ctx, cfg, releases.Deps{
			Broker: in.broker, DB: in.dbs["releases"], Names: in.names, Registerer: in.reg, Log: in.log,
		})
	}
}

func prepareWebhooks(r *config.Reader, c config.Common) builder {
	cfg := webhooks.LoadConfig(r, c)
	return func(ctx context.Context, in *infra) (service, error) {
		return webhooks.New(ctx, cfg, webhooks.Deps{
			Broker: in.broker, DB: in.dbs["webhooks"], Names: in.names, Replicas: in.common.Replicas,
			Registerer: in.reg, Log: in.log,
		})
	}
}

func prepareStores(r *config.Reader, c config.Common) builder {
	cfg := stores.LoadConfig(r, c)
	return func(ctx context.Context, in *infra) (service, error) {
		return stores.New(ctx, cfg, stores.Deps{
			Broker: in.broker, DB: in.dbs["stores"], Names: in.names, Replicas: in.common.Replicas,
			Registerer: in.reg, Log: in.log,
		})
	}
}

func prepareIngress(r *config.Reader, c config.Common) builder {
	cfg := ingress.LoadConfig(r, c)
	return func(ctx context.Context, in *infra) (service, error) {
		return ingress.New(ctx, cfg, ingress.Deps{
			Broker: in.broker, Names: in.names, Registerer: in.reg, Log: in.log,
		})
	}
}

func prepareConsole(r *config.Reader, c config.Common) builder {
	cfg := console.LoadConfig(r, c)
	return func(ctx context.Context, in *infra) (service, error) {
		return console.New(ctx, cfg, console.Deps{
			Broker: in.broker, DB: in.dbs["console"], Names: in.names, Replicas: in.common.Replicas,
			Registerer: in.reg, Log: in.log,
		})
	}
}
