package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/apitosms/apitosms/libs/apperr"
)

// The few things the console does through this server's public HTTP API
// (Config.APIURL) rather than a NATS request: queueing a test SMS (the
// ingress path: quota, rate limit, idempotency, durability) and the
// operator's releases (the APK upload is streamed through as it came).

// apiError is a non-2xx answer of the API, its "error" sentence kept.
func apiError(status int, body []byte) error {
	var e struct {
		Error  string `json:"error"`
		Code   string `json:"code"`
		Errors []struct {
			Error string `json:"error"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(body, &e)
	msg := e.Error
	if len(e.Errors) > 0 {
		msg = e.Errors[0].Error
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	if e.Code == "" {
		e.Code = "api_error"
	}
	if status >= 500 {
		return apperr.ErrUnavailable
	}
	return apperr.New(status, e.Code, msg)
}

// callAPI sends a request to the API and decodes a 2xx JSON answer into out
// (nil: ignored).
func (w *Web) callAPI(ctx context.Context, method, path string, body io.Reader, contentType string, bearer string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(w.cfg.APIURL, "/")+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// The error may name the URL, which holds a token: say only what failed.
		return fmt.Errorf("console API call %s %s: %w", method, strings.SplitN(path, "/", 4)[1], apperr.ErrUnavailable)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return apiError(resp.StatusCode, raw)
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}
