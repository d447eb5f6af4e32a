package store_test

import (
	"context"
	"testing"

	"github.com/apitosms/apitosms/libs/testkit"
)

// Windows of every shape (one statement per set bit of the size below the
// largest chunk) store each row once, repeated rows not again.
func TestInsertWindowSizes(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		st := open(t, b)
		ctx := context.Background()
		in := st.NewInserter()
		t.Cleanup(func() { _ = in.Close() })
		next, want, wantSum := int64(1), 0, int64(0)
		for _, n := range []int{1, 2, 3, 7, 8, 15, 16, 17, 255, 256, 511, 512, 513, 1000} {
			window := rows(int64(n), next, n)
			if next > 1 {
				window = append(window, rows(1, next-1, 1)...) // stored by the window before
			}
			inserted, err := in.Insert(ctx, window)
			if err != nil || inserted != n {
				t.Fatalf("window of %d: inserted %d, %v", n, inserted, err)
			}
			for p := next; p < next+int64(n); p++ {
				wantSum += p
			}
			want += n
			next += int64(n)
		}
		var count, sum int64
		if err := st.DB().DB.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(pos), 0) FROM messages").Scan(&count, &sum); err != nil {
			t.Fatal(err)
		}
		if count != int64(want) || sum != wantSum {
			t.Fatalf("%d rows, positions summing to %d; want %d, %d", count, sum, want, wantSum)
		}
	})
}
