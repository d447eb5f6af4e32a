package database

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
)

// TestConcurrentOpensOfANewFile opens one new SQLite file from many
// connections at once, as processes sharing a data dir do at their first
// start: turning a new file to WAL mode can answer SQLITE_BUSY without
// waiting (TestConcurrentStartup saw it), which Open must wait out.
func TestConcurrentOpensOfANewFile(t *testing.T) {
	for round := range 20 {
		dir := filepath.Join(t.TempDir(), "d")
		var wg sync.WaitGroup
		errs := make(chan error, 12)
		for range 12 {
			wg.Go(func() {
				db, err := Open(context.Background(), Config{Service: "billing", DataDir: dir})
				if err != nil {
					errs <- err
					return
				}
				_ = db.Close()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}
