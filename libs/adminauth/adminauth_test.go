package adminauth_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/apitosms/apitosms/libs/adminauth"
	"github.com/apitosms/apitosms/libs/apperr"
	"github.com/apitosms/apitosms/libs/testkit"
)

func app(t *testing.T, adminToken string) *fiber.App {
	t.Helper()
	a := fiber.New(fiber.Config{ErrorHandler: apperr.Handler(testkit.Logger(t))})
	a.Use(adminauth.Middleware(adminToken))
	a.Get("/admin", func(c *fiber.Ctx) error { return c.SendString("ok") })
	return a
}

func status(t *testing.T, a *fiber.App, auth string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", "/admin", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := a.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestMiddleware(t *testing.T) {
	const secret = "s3cret-admin-token"
	a := app(t, secret)
	cases := []struct {
		name, auth string
		want       int
	}{
		{"correct", "Bearer " + secret, 200},
		{"missing", "", 401},
		{"wrong token", "Bearer nope", 401},
		{"prefix of token", "Bearer " + secret[:5], 401},
		{"token plus more", "Bearer " + secret + "x", 401},
		{"no scheme", secret, 401},
		{"basic scheme", "Basic " + secret, 401},
		{"empty bearer", "Bearer ", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, body := status(t, a, c.auth)
			if got != c.want {
				t.Fatalf("status = %d, want %d", got, c.want)
			}
			if c.want == 401 && !strings.Contains(body, `"code":"unauthorized"`) {
				t.Errorf("401 body = %s", body)
			}
			if c.want == 200 && body != "ok" {
				t.Errorf("body = %q", body)
			}
		})
	}
}

func TestEmptyAdminTokenRefusesAll(t *testing.T) {
	a := app(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer  ", "Bearer x"} {
		if got, _ := status(t, a, auth); got != 401 {
			t.Errorf("Authorization %q: status %d, want 401", auth, got)
		}
	}
}
