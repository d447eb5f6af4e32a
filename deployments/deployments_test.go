package deployments

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
)

// services are the targets every deployment must run.
var services = []string{"ingress", "queue", "status", "billing", "releases", "stores", "webhooks", "console"}

// knownEnv collects the environment variables the server reads: every
// "APITOSMS_..." string literal (and GOMEMLIMIT) in its non-test Go code.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`"(APITOSMS_[A-Z0-9_]+|GOMEMLIMIT)"`)
	known := map[string]bool{}
	for _, dir := range []string{"../libs", "../services", "../internal/app", "../cmd"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			for _, m := range re.FindAllSubmatch(b, -1) {
				known[string(m[1])] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, must := range []string{"APITOSMS_NATS_URL", "APITOSMS_DATABASE_URL", "APITOSMS_SHUTDOWN_TIMEOUT", "APITOSMS_TARGET"} {
		if !known[must] {
			t.Fatalf("config scan found no %s: the scan is broken", must)
		}
	}
	return known
}

// renderChart renders the chart as `helm template` would, with overrides.
func renderChart(t *testing.T, vals map[string]any) []map[string]any {
	t.Helper()
	chart, err := loader.Load("helm/apitosms")
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(&action.Configuration{})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = "sms", "apitosms"
	install.KubeVersion = &chartutil.KubeVersion{Version: "v1.31.0", Major: "1", Minor: "31"}
	rel, err := install.Run(chart, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(strings.NewReader(rel.Manifest))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, rel.Manifest)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

// dig walks maps and lists: dig(x, "spec", "template", 0).
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

var chartValues = map[string]any{
	"databaseUrl":    "postgres://u:p@db:5432/sms",
	"adminToken":     "x",
	"serviceMonitor": map[string]any{"enabled": true},
	"ingress":        map[string]any{"enabled": true},
}

func TestHelmChartRendersEveryService(t *testing.T) {
	known := knownEnv(t)
	docs := renderChart(t, chartValues)
	kinds := map[string][]map[string]any{}
	for _, d := range docs {
		kinds[d["kind"].(string)] = append(kinds[d["kind"].(string)], d)
	}
	deployments := map[string]map[string]any{}
	for _, d := range kinds["Deployment"] {
		deployments[dig(d, "metadata", "labels", "app.kubernetes.io/component").(string)] = d
	}
	for _, svc := range services {
		d, ok := deployments[svc]
		if !ok {
			t.Errorf("no Deployment for %s", svc)
			continue
		}
		c := dig(d, "spec", "template", "spec", "containers", 0)
		if args := dig(c, "args"); !slices.Equal(toStrings(args), []string{"-target=" + svc}) {
			t.Errorf("%s: args %v", svc, args)
		}
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
			if got := dig(c, probe, "httpGet", "path"); got != path {
				t.Errorf("%s: %s path %v, want %s", svc, probe, got, path)
			}
		}
		for _, e := range dig(c, "env").([]any) {
			name := dig(e, "name").(string)
			if !known[name] {
				t.Errorf("%s: env %s is not read by the server's config code", svc, name)
			}
		}
		if dig(c, "resources", "requests", "cpu") == nil || dig(c, "resources", "limits", "memory") == nil {
			t.Errorf("%s: resources %v", svc, dig(c, "resources"))
		}
		if dig(d, "spec", "template", "spec", "securityContext", "runAsNonRoot") != true || dig(c, "securityContext", "readOnlyRootFilesystem") != true {
			t.Errorf("%s: not locked down: %v", svc, dig(c, "securityContext"))
		}
		// The grace period covers the preStop pause plus the bounded drain.
		grace, _ := dig(d, "spec", "template", "spec", "terminationGracePeriodSeconds").(int)
		pause, _ := dig(c, "lifecycle", "preStop", "sleep", "seconds").(int)
		if grace < pause+20+1 {
			t.Errorf("%s: grace %d s does not cover preStop %d s + 20 s drain", svc, grace, pause)
		}
		if svc != "ingress" && dig(d, "spec", "replicas") == nil {
			t.Errorf("%s: no replicas", svc)
		}
	}
	if dig(deployments["ingress"], "spec", "replicas") != nil {
		t.Error("ingress sets replicas while its HPA scales it")
	}
	count := func(kind, component string) int {
		n := 0
		for _, d := range kinds[kind] {
			if dig(d, "metadata", "labels", "app.kubernetes.io/component") == component {
				n++
			}
		}
		return n
	}
	for _, svc := range services {
		if count("Service", svc) != 1 || count("PodDisruptionBudget", svc) != 1 {
			t.Errorf("%s: Service/PodDisruptionBudget missing", svc)
		}
	}
	if len(kinds["HorizontalPodAutoscaler"]) != 1 || count("HorizontalPodAutoscaler", "ingress") != 1 {
		t.Errorf("want one HPA, for ingress: %d", len(kinds["HorizontalPodAutoscaler"]))
	}
	if len(kinds["ServiceMonitor"]) != 1 || dig(kinds["ServiceMonitor"][0], "spec", "endpoints", 0, "path") != "/metrics" {
		t.Errorf("ServiceMonitor: %v", kinds["ServiceMonitor"])
	}
	if len(kinds["Ingress"]) != 1 || len(kinds["Secret"]) != 1 {
		t.Errorf("Ingress %d, Secret %d", len(kinds["Ingress"]), len(kinds["Secret"]))
	}
}

func TestHelmChartLints(t *testing.T) {
	lint := action.NewLint()
	res := lint.Run([]string{"helm/apitosms"}, chartValues)
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		}
	}
	for _, err := range res.Errors {
		t.Errorf("helm lint: %v", err)
	}
}

func TestHelmChartNeedsADatabase(t *testing.T) {
	chart, err := loader.Load("helm/apitosms")
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(&action.Configuration{})
	install.DryRun, install.ClientOnly, install.ReleaseName = true, true, "sms"
	install.KubeVersion = &chartutil.KubeVersion{Version: "v1.31.0", Major: "1", Minor: "31"}
	if _, err := install.Run(chart, map[string]any{}); err == nil || !strings.Contains(err.Error(), "databaseUrl") {
		t.Fatalf("no databaseUrl nor existingSecret: %v, want a clear error", err)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestComposeFile(t *testing.T) {
	known := knownEnv(t)
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Healthcheck *struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			DependsOn map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
			StopGracePeriod string `yaml:"stop_grace_period"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for name, s := range compose.Services {
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("%s: no healthcheck", name)
		}
		for dep, d := range s.DependsOn {
			if _, ok := compose.Services[dep]; !ok || d.Condition != "service_healthy" {
				t.Errorf("%s depends on %s with condition %q", name, dep, d.Condition)
			}
		}
	}
	for _, svc := range services {
		s, ok := compose.Services[svc]
		if !ok {
			t.Errorf("no compose service %s", svc)
			continue
		}
		if !slices.Equal(s.Command, []string{"-target=" + svc}) {
			t.Errorf("%s: command %v", svc, s.Command)
		}
		if !slices.Equal(s.Healthcheck.Test, []string{"CMD", "/apitosms", "health"}) {
			t.Errorf("%s: healthcheck %v", svc, s.Healthcheck.Test)
		}
		for k := range s.Environment {
			if !known[k] {
				t.Errorf("%s: env %s is not read by the server's config code", svc, k)
			}
		}
		for _, dep := range []string{"postgres", "nats-1", "nats-2", "nats-3"} {
			if _, ok := s.DependsOn[dep]; !ok {
				t.Errorf("%s does not wait for %s", svc, dep)
			}
		}
		if s.StopGracePeriod == "" {
			t.Errorf("%s: no stop_grace_period (Docker's default 10 s is shorter than the drain)", svc)
		}
	}
	for _, infra := range []string{"proxy", "postgres", "nats-1", "nats-2", "nats-3", "prometheus"} {
		if _, ok := compose.Services[infra]; !ok {
			t.Errorf("no compose service %s", infra)
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER 65532", "HEALTHCHECK", `"/apitosms", "health"`, "distroless/static"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	ign, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "data", "bin", ".cluster"} {
		if !slices.Contains(strings.Fields(string(ign)), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// tool returns the path of an external checker, or skips with why.
func tool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed: skipping (%s; .ci/run installs it)", name, install)
	}
	return p
}

func TestPrometheusRules(t *testing.T) {
	promtool := tool(t, "promtool", "apt-get install prometheus")
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestCaddyfile(t *testing.T) {
	caddy := tool(t, "caddy", "apt-get install caddy")
	out, err := exec.Command(caddy, "adapt", "--config", "Caddyfile", "--adapter", "caddyfile").CombinedOutput()
	if err != nil {
		t.Fatalf("caddy adapt: %v\n%s", err, out)
	}
	// The contract's 404 for unknown paths, with its content type.
	for _, want := range []string{`{\"error\":\"Not found\",\"code\":\"not_found\"}`, `application/json; charset=utf-8`, `/readyz`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("adapted Caddyfile lacks %s", want)
		}
	}
}

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/apitosms.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	exprs := 0
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs++
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
				t.Errorf("panel %q: unbalanced %s", p.Title, tg.Expr)
			}
		}
	}
	if d.UID == "" || exprs < 20 {
		t.Fatalf("dashboard uid %q, %d expressions", d.UID, exprs)
	}
}
