package store

import (
	"context"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// BenchmarkReadReported1000 reads 1000 reported rows per operation on
// SQLite, as RecordReports does in its transaction: "narrow" as for an
// account without a webhook (the plain drain's), "wide" as for one with.
// The rows are initiated under confirmed claims (a claim id of 19 digits),
// the drain's common case. Only the read: no report is recorded.
func BenchmarkReadReported1000(b *testing.B) {
	ctx := context.Background()
	s := New(testkit.Embedded(b).DB(b, Service))
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	const size = 1000
	msgs := make([]NewMessage, size)
	positions := make([]any, size)
	for i := range msgs {
		pos := int64(1_000_000 + i)
		msgs[i] = NewMessage{Pos: pos, AccountID: 42, Phone: "+15550000000", Text: "hello", AcceptedAt: time.Now()}
		positions[i] = pos
	}
	in := s.NewInserter()
	defer in.Close()
	if _, err := in.Insert(ctx, msgs); err != nil {
		b.Fatal(err)
	}
	if _, err := s.sqlDB().ExecContext(ctx, "UPDATE messages SET status = 1, claim_id = 8123456789012345678 + pos / 200, claimed_at = accepted_at"); err != nil {
		b.Fatal(err)
	}
	stmts, err := s.reportStatements(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, wide := range []bool{false, true} {
		name := "narrow"
		if wide {
			name = "wide"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			before := testkit.ProcessCPU()
			for b.Loop() {
				tx, err := s.sqlDB().BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				into := make(map[int64]*reportedRow, size)
				err = s.readReported(ctx, tx, stmts, positions, into, wide)
				_ = tx.Rollback()
				if err != nil || len(into) != size {
					b.Fatalf("read %d rows, %v", len(into), err)
				}
			}
			b.ReportMetric(float64((testkit.ProcessCPU()-before).Nanoseconds())/float64(b.N*size), "cpu-ns/row")
		})
	}
}
