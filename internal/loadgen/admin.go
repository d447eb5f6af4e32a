package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Bench accounts get a monthly limit no run reaches and the highest rate
// limit the operator API allows.
const (
	benchMonthlyLimit = 1_000_000_000_000
	benchRatePerMin   = 1_000_000
)

// CreateAccounts creates n accounts with a bench subscription through the
// operator API and returns their API tokens.
func CreateAccounts(ctx context.Context, c *http.Client, baseURL, adminToken string, n int) ([]string, error) {
	base := strings.TrimRight(baseURL, "/")
	tokens := make([]string, 0, n)
	for i := 0; i < n; i++ {
		var acc struct {
			ID       int64  `json:"id"`
			APIToken string `json:"apiToken"`
		}
		body := map[string]any{"name": fmt.Sprintf("Bench shop %d", i+1), "email": fmt.Sprintf("bench%d@example.com", i+1)}
		if err := adminCall(ctx, c, http.MethodPost, base+"/admin/v1/accounts", adminToken, body, http.StatusCreated, &acc); err != nil {
			return nil, err
		}
		sub := map[string]any{"plan": "bench", "monthlyLimit": benchMonthlyLimit, "rateLimitPerMinute": benchRatePerMin}
		url := fmt.Sprintf("%s/admin/v1/accounts/%d/subscription", base, acc.ID)
		if err := adminCall(ctx, c, http.MethodPut, url, adminToken, sub, http.StatusOK, nil); err != nil {
			return nil, err
		}
		tokens = append(tokens, acc.APIToken)
	}
	return tokens, nil
}

func adminCall(ctx context.Context, c *http.Client, method, url, token string, body any, want int, out any) error {
	js, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(js))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, route(url), resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// route is url's path for an error message, without the server's address
// and with an API token replaced by {token}.
func route(url string) string {
	if i := strings.Index(url, "/admin/"); i >= 0 {
		return url[i:]
	}
	if i := strings.Index(url, "/api/"); i >= 0 {
		rest := url[i+len("/api/"):]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return "/api/{token}" + rest[j:]
		}
	}
	return url
}
