package inventory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dynamo-go/dynamo/internal/testdb"
	"github.com/dynamo-go/dynamo/inventory/synth"
)

// BenchmarkInject injects one campaign document of each size into a fresh
// database; updates/s should not fall as the document grows.
func BenchmarkInject(b *testing.B) {
	for _, n := range []int{2_000, 10_000} {
		b.Run(fmt.Sprintf("datasets=%d", n), func(b *testing.B) {
			doc := synth.InjectDoc(synth.InjectSpec{Sites: 51, Datasets: n, Seed: 1})
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				d := testdb.SQLite(b)
				s := load(b, d)
				b.StartTimer()
				res, err := s.Inject(context.Background(), t0, doc)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(res.Updates)/b.Elapsed().Seconds()*float64(i+1), "updates/s")
			}
		})
	}
}
