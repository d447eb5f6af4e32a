package store

import (
	"context"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/database"
	"github.com/apitosms/apitosms/libs/testkit"
)

// TestMarkFinalSearchesByPrimaryKeySQLite: SQLite's MarkFinal walks the
// JSON list and finds each row by its position (the rowid), never scanning
// deliveries.
func TestMarkFinalSearchesByPrimaryKeySQLite(t *testing.T) {
	ctx := context.Background()
	db, err := database.Open(ctx, database.Config{DataDir: t.TempDir(), Service: Service})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	plan := testkit.QueryPlan(t, db.DB, markFinalSQLite, "d", "t", "[1,-2]", 1, finalFrom)
	text := strings.Join(plan, "; ")
	if !strings.Contains(text, "SEARCH deliveries USING INTEGER PRIMARY KEY") || strings.Contains(text, "SCAN deliveries") {
		t.Fatalf("plan %q, want deliveries searched by its primary key", text)
	}
}
