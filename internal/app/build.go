package app

import (
	"context"

	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/services/billing"
	"github.com/apitosms/apitosms/services/ingress"
	"github.com/apitosms/apitosms/services/queue"
	"github.com/apitosms/apitosms/services/releases"
	"github.com/apitosms/apitosms/services/status"
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
		return queue.New(ctx, cfg, queue.Deps{
			Broker: in.broker, DB: in.dbs["queue"], Names: in.names, Registerer: in.reg, Log: in.log,
		})
	}
}

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

func prepareIngress(r *config.Reader, c config.Common) builder {
	cfg := ingress.LoadConfig(r, c)
	return func(ctx context.Context, in *infra) (service, error) {
		return ingress.New(ctx, cfg, ingress.Deps{
			Broker: in.broker, Names: in.names, Registerer: in.reg, Log: in.log,
		})
	}
}
