package billing_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

// TestAdminListAccounts: §14's list pages by a stable cursor, searches by
// name, email or id, and refuses bad paging.
func TestAdminListAccounts(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		r := startReplica(t, b)
		tag := testkit.Namespace() // unique per test: other tests may share the database
		var ids []float64
		for i := range 5 {
			out := r.admin(t, "POST", "/admin/v1/accounts", map[string]any{
				"name": fmt.Sprintf("Shop_%d %s", i, tag), "email": fmt.Sprintf("owner%d@%s.example", i, tag)}, 201)
			ids = append(ids, out["id"].(float64))
		}
		a := account{ID: int64(ids[0]), path: "/admin/v1/accounts/" + itoa(int64(ids[0]))}
		r.subscribe(t, a, map[string]any{"plan": "pro", "monthlyLimit": 100})

		// Page through the search by two: 2, 2, 1, never a repeat.
		var seen []float64
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			out := r.admin(t, "GET", "/admin/v1/accounts?limit=2&query="+url.QueryEscape(tag)+"&cursor="+cursor, nil, 200)
			for _, x := range out["accounts"].([]any) {
				acc := x.(map[string]any)
				if _, ok := acc["apiToken"]; ok {
					t.Fatal("list shows a token")
				}
				seen = append(seen, acc["id"].(float64))
			}
			if out["nextCursor"] == nil {
				break
			}
			cursor = out["nextCursor"].(string)
		}
		if fmt.Sprint(seen) != fmt.Sprint(ids) {
			t.Fatalf("paged ids %v, want %v", seen, ids)
		}

		first := r.admin(t, "GET", "/admin/v1/accounts?query="+url.QueryEscape(tag), nil, 200)["accounts"].([]any)[0].(map[string]any)
		if first["subscription"].(map[string]any)["plan"] != "pro" || first["limit"] != 100.0 || first["used"] != 0.0 {
			t.Fatalf("listed account = %v", first)
		}
		for q, want := range map[string]int{
			"OWNER3@" + tag:     1, // email, any case
			"shop_2 " + tag:     1, // name
			itoa(int64(ids[4])): 1, // id (names and emails of this test hold no such digits run... or few)
			"%" + tag:           0, // wildcards are literal
			"nobody-" + tag:     0,
		} {
			got := r.admin(t, "GET", "/admin/v1/accounts?query="+url.QueryEscape(q), nil, 200)["accounts"].([]any)
			if q == itoa(int64(ids[4])) {
				found := false
				for _, x := range got {
					found = found || x.(map[string]any)["id"] == ids[4]
				}
				if !found {
					t.Fatalf("query by id %s: %v", q, got)
				}
				continue
			}
			if len(got) != want {
				t.Fatalf("query %q: %d accounts, want %d", q, len(got), want)
			}
		}
		for _, bad := range []string{"limit=0", "limit=x", "cursor=-1", "cursor=abc"} {
			status, body := r.do(t, "GET", "/admin/v1/accounts?"+bad, adminToken, nil)
			if status != 400 || (body["code"] != "invalid_limit" && body["code"] != "invalid_cursor") {
				t.Fatalf("%s: %d %v", bad, status, body)
			}
		}
		if status, _ := r.do(t, "GET", "/admin/v1/accounts", "wrong", nil); status != 401 {
			t.Fatalf("list without the admin token: %d", status)
		}
	})
}
