package publish

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// BenchmarkPublish1000 publishes 1000-item requests to the accepted stream
// (embedded server: every write fsynced before the acknowledgement).
func BenchmarkPublish1000(b *testing.B) {
	be := testkit.Embedded(b)
	br := be.Broker(b)
	p := New(br.JS, be.Names.AcceptedSubject(), br.Conn.MaxPayload())
	items := make([]events.AcceptedSMS, 1000)
	for i := range items {
		items[i] = events.AcceptedSMS{AccountID: 1, Phone: fmt.Sprintf("+1555%07d", i),
			Text: fmt.Sprintf("Order #%d has shipped. Track it at https://example.com/t/%d", i, i)}
	}
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		if _, err := p.Publish(ctx, fmt.Sprintf("req-%d", n), time.Now(), items, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*1000)/b.Elapsed().Seconds(), "items/s")
}

func TestPublishSplitsByPayloadAndKeepsOrder(t *testing.T) {
	be := testkit.Embedded(t)
	br := be.Broker(t)
	p := New(br.JS, be.Names.AcceptedSubject(), 64<<10) // small max payload: forces splitting
	items := make([]events.AcceptedSMS, 3000)
	for i := range items {
		items[i] = events.AcceptedSMS{AccountID: 7, Phone: "+15550000000", Text: fmt.Sprintf("m-%d %0100d", i, i)}
	}
	ctx := context.Background()
	positions, err := p.Publish(ctx, "req", time.Now(), items, false)
	if err != nil {
		t.Fatal(err)
	}
	// The same request again (a retry after a lost ack) is de-duplicated and
	// answered with the same positions.
	again, err := p.Publish(ctx, "req", time.Now(), items, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again, positions) {
		t.Fatal("the retried publish returned other positions")
	}
	s, err := br.JS.Stream(ctx, be.Names.AcceptedStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs < 3 || info.State.LastSeq != info.State.Msgs {
		t.Fatalf("stream state %+v: want several chunks, no duplicates", info.State)
	}
	var got []string
	var stored []int64
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Data) > 64<<10 {
			t.Fatalf("chunk of %d bytes exceeds the max payload", len(m.Data))
		}
		var batch events.AcceptedBatch
		if err := jsonUnmarshal(m.Data, &batch); err != nil {
			t.Fatal(err)
		}
		if len(batch.Items) > events.MaxItemsPerEvent {
			t.Fatalf("chunk of %d items", len(batch.Items))
		}
		for j, it := range batch.Items {
			got = append(got, it.Text)
			stored = append(stored, events.Position(seq, j))
		}
	}
	if len(got) != len(items) {
		t.Fatalf("stored %d items, want %d", len(got), len(items))
	}
	for i, text := range got {
		if text != items[i].Text {
			t.Fatalf("item %d out of order", i)
		}
	}
	if !slices.Equal(positions, stored) {
		t.Fatal("Publish returned positions other than where the items are stored")
	}
}
