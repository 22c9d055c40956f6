package consistency

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/dynamo-go/dynamo/internal/testdb"
)

var benchDBFiles = 1_000_000

// BenchmarkInventoryStreamSQLite measures the inventory side read from the
// database: N files in blocks of 1000, every block replicated (complete)
// at site 1 and, to make the join select, every other block at site 2.
// The figure is the time to stream site 1's files in LFN order (the DB
// sorts; SQLite's sorter spills to temp files).
//
//	go test ./consistency -run '^$' -bench InventoryStream -benchtime 1x
func BenchmarkInventoryStreamSQLite(b *testing.B) {
	d := testdb.SQLite(b)
	ctx := context.Background()
	start := time.Now()
	err := d.InTx(ctx, func(tx *sqlx.Tx) error {
		for blk := 0; blk < benchDBFiles/1000; blk++ {
			if _, err := tx.Exec(`INSERT INTO block_replicas (block_id, site_id, group_id, flags, is_complete, size, num_files, last_update) VALUES (?, 1, 0, 0, 1, 0, 0, 0)`, blk+1); err != nil {
				return err
			}
			if blk%2 == 0 {
				tx.Exec(`INSERT INTO block_replicas (block_id, site_id, group_id, flags, is_complete, size, num_files, last_update) VALUES (?, 2, 0, 0, 1, 0, 0, 0)`, blk+1)
			}
		}
		st, err := tx.Prepare(`INSERT INTO files (id, block_id, lfn, size, adler32) VALUES (?, ?, ?, ?, '')`)
		if err != nil {
			return err
		}
		for i := 0; i < benchDBFiles; i++ {
			// Names scattered across blocks so the sort has work to do.
			if _, err := st.Exec(i+1, i/1000+1, fmt.Sprintf("/store/mc/P%03d/AODSIM/%08x.root", i%997, uint32(i)*2654435761), 1000); err != nil {
				return err
			}
		}
		return st.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d files in %v", benchDBFiles, time.Since(start))
	b.ResetTimer()
	for range b.N {
		s, err := OpenInventoryStream(ctx, d, 1)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for s.Next() {
			n++
		}
		if err := s.Err(); err != nil || n != benchDBFiles {
			b.Fatalf("streamed %d, err %v", n, err)
		}
		s.Close()
	}
	b.ReportMetric(float64(benchDBFiles)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}
