package billing_test

import (
	"testing"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
	"github.com/apitosms/apitosms/libs/token"
)

// TestConsoleRequests: the console's account, accounts and rotate-token
// requests answer what the operator API does.
func TestConsoleRequests(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := startReplica(t, b)
		a := r.createAccount(t)
		r.subscribe(t, a, map[string]any{"plan": "pro", "monthlyLimit": 100, "rateLimitPerMinute": 120})
		got, err := call[events.AccountRequest, events.AccountReply](t, r.nc, b.Names.BillingAccount(), events.AccountRequest{AccountID: a.ID})
		if err != nil || got.ID != a.ID || got.Email != "shop@example.com" || got.Plan != "pro" || !got.SubscriptionActive ||
			got.MonthlyLimit != 100 || got.RateLimitPerMinute != 120 || got.Used != 0 {
			t.Fatalf("account = %+v, %v", got, err)
		}
		if got.StartedAt == "" || got.ExpiresAt != "" || got.EndedAt != "" || len(got.History) != 0 {
			t.Fatalf("subscription dates and history before any send: %+v", got)
		}
		// Usage history: this month's count once messages are reserved.
		res := mustReserve(t, r, b.Names, a.ID, 3)
		got, err = call[events.AccountRequest, events.AccountReply](t, r.nc, b.Names.BillingAccount(), events.AccountRequest{AccountID: a.ID})
		if err != nil || len(got.History) != 1 || got.History[0] != (events.MonthUsage{Month: res.Month, Used: 3}) {
			t.Fatalf("history after 3 reserved: %+v, %v", got.History, err)
		}
		_, err = call[events.AccountRequest, events.AccountReply](t, r.nc, b.Names.BillingAccount(), events.AccountRequest{AccountID: 1 << 40})
		wantCode(t, err, "account_not_found")

		page, err := call[events.AccountsRequest, events.AccountsReply](t, r.nc, b.Names.BillingAccounts(), events.AccountsRequest{Query: itoa(a.ID), Limit: 10})
		if err != nil || len(page.Accounts) == 0 || page.Accounts[0].StartedAt != got.StartedAt || page.Accounts[0].History != nil {
			t.Fatalf("accounts = %+v, %v", page, err)
		}
		_, err = call[events.AccountsRequest, events.AccountsReply](t, r.nc, b.Names.BillingAccounts(), events.AccountsRequest{Limit: 0})
		wantCode(t, err, "invalid_limit")

		rot, err := call[events.AccountRequest, events.TokenReply](t, r.nc, b.Names.BillingRotateToken(), events.AccountRequest{AccountID: a.ID})
		if err != nil || !token.WellFormed(rot.APIToken) || rot.APIToken == a.Token {
			t.Fatalf("rotate = %+v, %v", rot, err)
		}
		_, err = call[events.AuthRequest, events.AuthReply](t, r.nc, b.Names.BillingAuth(), events.AuthRequest{TokenDigest: token.Digest(a.Token)})
		wantCode(t, err, "invalid_token")
	})
}
