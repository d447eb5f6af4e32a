package batch

import (
	"encoding/json"
	"fmt"
	"testing"
)

func body(n int) []byte {
	items := make([]map[string]string, n)
	for i := range items {
		items[i] = map[string]string{"phone": fmt.Sprintf("+1 555 %07d", i), "message": fmt.Sprintf("Order #%d has shipped. Track it at https://example.com/t/%d", i, i)}
	}
	b, _ := json.Marshal(items)
	return b
}

// BenchmarkParse1000 decodes and validates a 1000-item queue request.
func BenchmarkParse1000(b *testing.B) {
	data := body(1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := Parse(data, 1000)
		if err != nil || len(res.Valid) != 1000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "items/s")
}
