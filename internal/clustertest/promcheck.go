package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// checkQueries runs every dashboard panel's expression and every loaded
// alert's expression through Prometheus. A panel must parse and return at
// least one series. An alert's condition is normally empty (nothing
// firing), so each operand of its top-level and/or/unless is queried with
// its top-level comparison made a `bool` one, which returns the signal's
// series whatever their values: each must parse and return series.
func checkQueries(ctx context.Context, promURL, dashboard, alertsFile string) error {
	p := prom{base: strings.TrimRight(promURL, "/"), client: &http.Client{Timeout: 10 * time.Second}}
	// Wait until Prometheus has scraped every process since the load ended.
	since := float64(time.Now().Unix())
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := p.query(ctx, `min(timestamp(up{job="apitosms"}))`)
		if err == nil && len(res) > 0 && res[0].value() > since {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prometheus has not scraped every process in 30 s (%w)", err)
		}
		time.Sleep(time.Second)
	}
	var errs []error
	exprs, err := dashboardExprs(dashboard)
	if err != nil {
		return err
	}
	for _, e := range exprs {
		q := strings.NewReplacer("$__rate_interval", "1m", "${__rate_interval}", "1m", "$__interval", "15s").Replace(e.expr)
		res, err := p.query(ctx, q)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("panel %q: %s: %w", e.panel, q, err))
		case len(res) == 0:
			errs = append(errs, fmt.Errorf("panel %q: no series: %s", e.panel, q))
		}
	}
	fmt.Printf("prometheus: %d dashboard expressions queried\n", len(exprs))

	rules, err := p.rules(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	fileRules, err := countAlerts(alertsFile)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if len(rules) != fileRules {
		errs = append(errs, fmt.Errorf("prometheus loaded %d alerts, %s has %d", len(rules), alertsFile, fileRules))
	}
	parts := 0
	for _, r := range rules {
		if r.Health == "err" {
			errs = append(errs, fmt.Errorf("alert %s: %s", r.Name, r.LastError))
		}
		if _, err := p.query(ctx, r.Query); err != nil {
			errs = append(errs, fmt.Errorf("alert %s does not parse: %w", r.Name, err))
			continue
		}
		for _, part := range splitSetOps(r.Query) {
			q := boolCompare(part)
			parts++
			res, err := p.query(ctx, q)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("alert %s: %s: %w", r.Name, q, err))
			case len(res) == 0:
				errs = append(errs, fmt.Errorf("alert %s: no series: %s", r.Name, q))
			}
		}
	}
	fmt.Printf("prometheus: %d alerts loaded, %d signal expressions queried\n", len(rules), parts)
	return errors.Join(errs...)
}

type prom struct {
	base   string
	client *http.Client
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

func (s sample) value() float64 {
	if len(s.Value) != 2 {
		return 0
	}
	str, _ := s.Value[1].(string)
	v, _ := strconv.ParseFloat(str, 64)
	return v
}

func (p prom) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("prometheus answered %d: %w", resp.StatusCode, err)
	}
	if env.Status != "success" {
		return errors.New(env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

func (p prom) query(ctx context.Context, q string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err
	}
	if data.ResultType == "scalar" {
		return []sample{{}}, nil
	}
	var res []sample
	err := json.Unmarshal(data.Result, &res)
	return res, err
}

type rule struct {
	Name      string `json:"name"`
	Query     string `json:"query"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
	Type      string `json:"type"`
}

func (p prom) rules(ctx context.Context) ([]rule, error) {
	var data struct {
		Groups []struct {
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(ctx, "/api/v1/rules?type=alert", &data); err != nil {
		return nil, err
	}
	var out []rule
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// countAlerts counts "- alert:" entries in a rule file.
func countAlerts(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "- alert:") {
			n++
		}
	}
	return n, nil
}

type panelExpr struct{ panel, expr string }

// dashboardExprs lists every target expression of a Grafana dashboard,
// rows' nested panels included.
func dashboardExprs(path string) ([]panelExpr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []panelExpr
	var walk func([]json.RawMessage) error
	walk = func(ps []json.RawMessage) error {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			for _, t := range p.Targets {
				out = append(out, panelExpr{p.Title, t.Expr})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no panel expressions", path)
	}
	return out, nil
}

// scanTop calls fn for every byte of expr outside parentheses, brackets,
// braces and strings; fn returns how many bytes to skip.
func scanTop(expr string, fn func(i int) int) {
	depth := 0
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			switch c {
			case '\\':
				i++
			case quote:
				quote = 0
			}
			continue
		case c == '"' || c == '\'' || c == '`':
			quote = c
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
			continue
		case c == ')' || c == ']' || c == '}':
			depth--
			continue
		}
		if depth == 0 {
			i += fn(i)
		}
	}
}

func isWord(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// splitSetOps splits expr at its top-level and/or/unless operators,
// dropping their on(...)/ignoring(...) modifiers.
func splitSetOps(expr string) []string {
	var parts []string
	last := 0
	scanTop(expr, func(i int) int {
		for _, op := range []string{"and", "or", "unless"} {
			j := i + len(op)
			if strings.HasPrefix(expr[i:], op) && (i == 0 || !isWord(expr[i-1])) && (j >= len(expr) || !isWord(expr[j])) {
				parts = append(parts, expr[last:i])
				last = j
				return len(op) - 1
			}
		}
		return 0
	})
	parts = append(parts, expr[last:])
	for k, p := range parts {
		p = strings.TrimSpace(p)
		for _, mod := range []string{"on", "ignoring"} {
			if rest, ok := strings.CutPrefix(p, mod); ok && strings.HasPrefix(strings.TrimSpace(rest), "(") {
				rest = strings.TrimSpace(rest)
				p = strings.TrimSpace(rest[strings.Index(rest, ")")+1:])
			}
		}
		parts[k] = p
	}
	return parts
}

// boolCompare makes expr's last top-level comparison a bool one.
func boolCompare(expr string) string {
	at, width := -1, 0
	scanTop(expr, func(i int) int {
		for _, op := range []string{"==", "!=", ">=", "<=", ">", "<"} {
			if strings.HasPrefix(expr[i:], op) {
				at, width = i, len(op)
				return len(op) - 1
			}
		}
		return 0
	})
	if at < 0 || strings.HasPrefix(strings.TrimSpace(expr[at+width:]), "bool") {
		return expr
	}
	return expr[:at+width] + " bool" + expr[at+width:]
}
