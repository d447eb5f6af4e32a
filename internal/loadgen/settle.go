package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// pendingMetric is the suffix of the consumers' lag gauges
// (apitosms_<service>_consumer_pending_messages{durable="..."}).
const pendingMetric = "_consumer_pending_messages{"

// settle waits until the server has stored everything it accepted: every
// consumer lag gauge on its /metrics reads 0. It returns how long that took,
// or an error if the server exposes no such gauge or ctx ends first.
func settle(ctx context.Context, client *http.Client, baseURL string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		pending, series, err := consumerLag(ctx, client, baseURL)
		if err != nil {
			return 0, err
		}
		if series == 0 {
			return 0, fmt.Errorf("%s/metrics has no consumer lag gauge (*%s...})", baseURL, pendingMetric)
		}
		if pending == 0 {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("server still %v messages behind after %v: %w", pending, timeout, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// consumerLag sums the consumer lag gauges on the server's /metrics and
// counts the series.
func consumerLag(ctx context.Context, client *http.Client, baseURL string) (sum float64, series int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("read server metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("read server metrics: %s", resp.Status)
	}
	return parseLag(bufio.NewScanner(resp.Body))
}

// parseLag reads Prometheus text exposition lines.
func parseLag(sc *bufio.Scanner) (sum float64, series int, err error) {
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apitosms_") || !strings.Contains(line, pendingMetric) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %q: %w", line, err)
		}
		sum += v
		series++
	}
	return sum, series, sc.Err()
}
