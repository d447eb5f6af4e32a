package app

import (
	"context"

	"github.com/apitosms/apitosms/services/billing"
	"github.com/apitosms/apitosms/services/ingress"
	"github.com/apitosms/apitosms/services/queue"
	"github.com/apitosms/apitosms/services/releases"
	"github.com/apitosms/apitosms/services/status"
	"github.com/apitosms/apitosms/services/webhooks"
)

func buildBilling(ctx context.Context, in *infra) (service, error) {
	return billing.New(ctx, billing.LoadConfig(in.reader, in.common), billing.Deps{
		Broker: in.broker, DB: in.dbs["billing"], Names: in.names, Registerer: in.reg, Log: in.log,
	})
}

func buildQueue(ctx context.Context, in *infra) (service, error) {
	return queue.New(ctx, queue.LoadConfig(in.reader, in.common), queue.Deps{
		Broker: in.broker, DB: in.dbs["queue"], Names: in.names, Registerer: in.reg, Log: in.log,
	})
}

func buildStatus(ctx context.Context, in *infra) (service, error) {
	return status.New(ctx, status.LoadConfig(in.reader, in.common), status.Deps{
		Broker: in.broker, DB: in.dbs["status"], Names: in.names, Registerer: in.reg, Log: in.log,
	})
}

func buildReleases(ctx context.Context, in *infra) (service, error) {
	return releases.New(ctx, releases.LoadConfig(in.reader, in.common), releases.Deps{
		Broker: in.broker, DB: in.dbs["releases"], Names: in.names, Registerer: in.reg, Log: in.log,
	})
}

func buildWebhooks(ctx context.Context, in *infra) (service, error) {
	return webhooks.New(ctx, webhooks.LoadConfig(in.reader, in.common), webhooks.Deps{
		Broker: in.broker, DB: in.dbs["webhooks"], Names: in.names, Replicas: in.common.Replicas,
		Registerer: in.reg, Log: in.log,
	})
}

func buildIngress(ctx context.Context, in *infra) (service, error) {
	return ingress.New(ctx, ingress.LoadConfig(in.reader, in.common), ingress.Deps{
		Broker: in.broker, Names: in.names, Registerer: in.reg, Log: in.log,
	})
}
