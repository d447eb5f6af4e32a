// Package deployments holds no code: its tests check the deployment files
// beside it (Helm chart, compose file, Caddyfile, Prometheus rules, Grafana
// dashboard) against the configuration code. It is a module of its own so
// Helm's large dependency tree stays out of the server's. Run with
// `make test-deploy` (GOWORK=off: it is not in the workspace).
package deployments
