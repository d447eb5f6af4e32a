package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"time"
)

// exerciseExtras makes what the dashboard shows besides the main load
// happen once: a monthly quota running out, a rate-limit refusal, an APK
// published and downloaded. Each answer is checked.
func exerciseExtras(ctx context.Context, l *load) error {
	quota, err := l.account(ctx, "Cluster test quota shop", 5, 1000)
	if err != nil {
		return err
	}
	items := `[{"phone":"+15550001","message":"a"},{"phone":"+15550002","message":"b"},{"phone":"+15550003","message":"c"},` +
		`{"phone":"+15550004","message":"d"},{"phone":"+15550005","message":"e"},{"phone":"+15550006","message":"f"}]`
	if code, body, err := l.call(ctx, http.MethodPost, "/api/"+quota+"/queue", "", "application/json", []byte(items)); err != nil || code != 200 {
		return fmt.Errorf("queue up to the quota: %d %s %w", code, body, err)
	}
	if code, body, err := l.call(ctx, http.MethodPost, "/api/"+quota+"/queue", "", "application/json", []byte(items)); err != nil || code != 402 {
		return fmt.Errorf("queue past the quota: %d %s %w, want 402", code, body, err)
	}
	limited, err := l.account(ctx, "Cluster test rate-limited shop", 100, 1)
	if err != nil {
		return err
	}
	if code, _, err := l.call(ctx, http.MethodGet, "/api/"+limited+"/get_messages", "", "", nil); err != nil || code != 200 {
		return fmt.Errorf("first request: %d %w", code, err)
	}
	if code, _, err := l.call(ctx, http.MethodGet, "/api/"+limited+"/get_messages", "", "", nil); err != nil || code != 429 {
		return fmt.Errorf("second request within the minute: %d %w, want 429", code, err)
	}

	// A release: a tiny ZIP as the APK, published, activated, downloaded.
	code := time.Now().Unix() % 1_000_000
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	_ = mw.WriteField("version", fmt.Sprintf("9.%d", code))
	_ = mw.WriteField("versionCode", fmt.Sprint(code))
	_ = mw.WriteField("releaseNotes", "cluster test")
	fw, _ := mw.CreateFormFile("file", "app.apk")
	_, _ = fw.Write(append([]byte("PK\x03\x04"), bytes.Repeat([]byte{0}, 4096)...))
	_ = mw.Close()
	if c, body, err := l.call(ctx, http.MethodPost, "/admin/v1/app-versions", l.admin, mw.FormDataContentType(), form.Bytes()); err != nil || c != 201 {
		return fmt.Errorf("upload: %d %s %w", c, body, err)
	}
	if c, body, err := l.call(ctx, http.MethodPost, fmt.Sprintf("/admin/v1/app-versions/%d/activate", code), l.admin, "", nil); err != nil || c != 200 {
		return fmt.Errorf("activate: %d %s %w", c, body, err)
	}
	if c, body, err := l.call(ctx, http.MethodGet, "/download/app.apk", "", "", nil); err != nil || c != 200 || len(body) != 4100 {
		return fmt.Errorf("download: %d (%d bytes) %w", c, len(body), err)
	}
	// The proxy's own 404 for what no service serves.
	if c, body, err := l.call(ctx, http.MethodGet, "/no/such/path", "", "", nil); err != nil || c != 404 || string(body) != `{"error":"Not found","code":"not_found"}` {
		return fmt.Errorf("unknown path through the proxy: %d %s %w", c, body, err)
	}
	return nil
}

// account creates an account with a subscription and returns its token.
func (l *load) account(ctx context.Context, name string, monthly, perMinute int) (string, error) {
	body, _ := json.Marshal(map[string]any{"name": name, "email": "ct@example.com"})
	c, data, err := l.call(ctx, http.MethodPost, "/admin/v1/accounts", l.admin, "application/json", body)
	if err != nil || c != 201 {
		return "", fmt.Errorf("create account: %d %s %w", c, data, err)
	}
	var acc struct {
		ID       int64  `json:"id"`
		APIToken string `json:"apiToken"`
	}
	if err := json.Unmarshal(data, &acc); err != nil {
		return "", err
	}
	sub, _ := json.Marshal(map[string]any{"plan": "ct", "monthlyLimit": monthly, "rateLimitPerMinute": perMinute})
	if c, data, err := l.call(ctx, http.MethodPut, fmt.Sprintf("/admin/v1/accounts/%d/subscription", acc.ID), l.admin, "application/json", sub); err != nil || c != 200 {
		return "", fmt.Errorf("subscription: %d %s %w", c, data, err)
	}
	return acc.APIToken, nil
}

func (l *load) call(ctx context.Context, method, path, bearer, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, l.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}
