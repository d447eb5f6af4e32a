package accountrows_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/apitosms/apitosms/libs/accountrows"
	"github.com/apitosms/apitosms/libs/testkit"
)

type thing struct {
	bun.BaseModel `bun:"table:accountrows_things"`

	ID        string `bun:"id,pk"`
	AccountID int64  `bun:"account_id"`
	Name      string `bun:"name"`
}

var (
	errNotFound = errors.New("thing not found")
	errAtMax    = errors.New("too many things")
	things      = accountrows.Kind{Prefix: "th_", Lock: 0x7468, NotFound: errNotFound, AtMax: errAtMax}
)

func open(t *testing.T, b testkit.Backend) *bun.DB {
	t.Helper()
	db := b.DB(t, "accountrows")
	ctx := context.Background()
	if _, err := db.NewCreateTable().Model((*thing)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.NewDropTable().Model((*thing)(nil)).Exec(context.Background()) })
	return db
}

// Concurrent creations for one account never take it past its maximum,
// and another account's rows do not count.
func TestCreateNeverExceedsMax(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		db := open(t, b)
		ctx := context.Background()
		const max, tries = 5, 24
		if err := accountrows.Create(ctx, db, things, 2, &thing{ID: things.NewID(), AccountID: 2}, max); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, tries)
		for i := range tries {
			wg.Go(func() {
				errs[i] = accountrows.Create(ctx, db, things, 1, &thing{ID: things.NewID(), AccountID: 1}, max)
			})
		}
		wg.Wait()
		created, refused := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				created++
			case errors.Is(err, errAtMax):
				refused++
			default:
				t.Errorf("create: %v", err)
			}
		}
		n, err := db.NewSelect().Model((*thing)(nil)).Where("account_id = 1").Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if created != max || refused != tries-max || n != max {
			t.Errorf("created %d, refused %d, rows %d; want %d, %d, %d", created, refused, n, max, tries-max, max)
		}
	})
}

// Get finds a row only within its account and only by a well-formed id.
func TestGetScopedToAccount(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		db := open(t, b)
		ctx := context.Background()
		id := things.NewID()
		if !things.WellFormedID(id) {
			t.Fatalf("NewID %q is not well formed", id)
		}
		if err := accountrows.Create(ctx, db, things, 1, &thing{ID: id, AccountID: 1, Name: "one"}, 10); err != nil {
			t.Fatal(err)
		}
		got, err := accountrows.Get[thing](ctx, db, things, 1, id)
		if err != nil || got.Name != "one" || got.ID != id {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		for _, c := range []struct {
			account int64
			id      string
		}{{2, id}, {1, things.NewID()}, {1, "th_../../x"}, {1, "wh_" + id[3:]}, {1, id[:len(id)-1] + "G"}} {
			if _, err := accountrows.Get[thing](ctx, db, things, c.account, c.id); !errors.Is(err, errNotFound) {
				t.Errorf("Get(%d, %q) = %v, want not found", c.account, c.id, err)
			}
		}
	})
}
