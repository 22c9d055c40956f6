// Package fileoptest builds small file:// federations for tests and
// benchmarks of the file-operation daemon: two (or more) sites whose
// storage is a local directory, one block with real files at the source.
package fileoptest

import (
	"bufio"
	"context"
	"fmt"
	"hash/adler32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/dynamo-go/dynamo/fileop"
	"github.com/dynamo-go/dynamo/inventory"
)

// Federation is a source site holding a complete block and a destination
// site, both file:// directories.
type Federation struct {
	Store          *inventory.Store
	Src, Dst       inventory.Site
	SrcDir, DstDir string
	Block          inventory.BlockID
	Files          []inventory.File
}

// Dataset is the name of the federation's dataset.
const Dataset = "/Fed/Test-v1/RAW"

// Setup creates under dir the directories src/ and dst/, nfiles files of
// size bytes at src (pseudo-random content, seeded by seed), and the
// inventory: sites T2_SRC and T2_DST (ready, disk, file:// backends), the
// group Ops, the dataset with block b1, and a complete replica at T2_SRC.
func Setup(ctx context.Context, s *inventory.Store, dir string, nfiles int, size int64, seed uint64, at time.Time) (*Federation, error) {
	f := &Federation{Store: s, SrcDir: filepath.Join(dir, "src"), DstDir: filepath.Join(dir, "dst")}
	for _, d := range []string{f.SrcDir, f.DstDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	var files []inventory.File
	var total int64
	for i := 0; i < nfiles; i++ {
		lfn := fmt.Sprintf("/store/fed/%03d/f%06d.root", i/1000, i)
		sum, err := writeRandom(filepath.Join(f.SrcDir, lfn), size, rng)
		if err != nil {
			return nil, err
		}
		files = append(files, inventory.File{LFN: lfn, Size: size, Adler32: sum})
		total += size
	}
	_, err := s.Write(ctx, at, func(t *inventory.Txn) error {
		src := inventory.Site{ID: t.NewSiteID(), Name: "T2_SRC", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Backend: "file://" + f.SrcDir}
		dst := inventory.Site{ID: t.NewSiteID(), Name: "T2_DST", StorageType: inventory.StorageDisk, Status: inventory.SiteReady, Backend: "file://" + f.DstDir}
		g := inventory.Group{ID: t.NewGroupID(), Name: "Ops"}
		ds := inventory.Dataset{ID: t.NewDatasetID(), Name: Dataset, Status: inventory.DatasetValid, DataType: inventory.DataMC}
		b := inventory.Block{ID: t.NewBlockID(), Dataset: ds.ID, Name: "b1", Size: total, NumFiles: int32(nfiles)}
		for i := range files {
			files[i].ID, files[i].Block = t.NewFileID(), b.ID
		}
		f.Src, f.Dst, f.Block, f.Files = src, dst, b.ID, files
		return t.Add(inventory.UpsertSite{Site: src}, inventory.UpsertSite{Site: dst}, inventory.UpsertGroup{Group: g},
			inventory.UpsertDataset{Dataset: ds}, inventory.UpsertBlock{Block: b},
			inventory.UpsertFiles{Block: b.ID, Files: files},
			inventory.UpsertDatasetReplica{DatasetReplica: inventory.DatasetReplica{Dataset: ds.ID, Site: src.ID, Group: g.ID}},
			inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: b.ID, Site: src.ID, Group: g.ID, Complete: true, Size: total, NumFiles: int32(nfiles)}})
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// QueueCopy does what Dealer does: in one inventory write, add an empty
// replica of the block at the destination and queue its files.
func (f *Federation) QueueCopy(ctx context.Context, at time.Time, priority int) (int, error) {
	n := 0
	_, err := f.Store.Write(ctx, at, func(t *inventory.Txn) error {
		g, _ := t.GroupID("Ops")
		b, _ := t.Block(f.Block)
		if _, ok := t.BlockReplica(f.Block, f.Dst.ID); !ok {
			if err := t.Add(inventory.UpsertDatasetReplica{DatasetReplica: inventory.DatasetReplica{Dataset: b.Dataset, Site: f.Dst.ID, Group: g}},
				inventory.UpsertBlockReplica{BlockReplica: inventory.BlockReplica{Block: f.Block, Site: f.Dst.ID, Group: g}}); err != nil {
				return err
			}
		}
		var err error
		n, err = fileop.QueueTransfers(ctx, f.Store, t, []fileop.ReplicaRef{{Block: f.Block, Site: f.Dst.ID}}, priority)
		return err
	})
	return n, err
}

// QueueDelete does what Detox does: queue the deletion of the block's
// replica at site. The last copy is refused (inventory.ErrLastCopy).
func (f *Federation) QueueDelete(ctx context.Context, at time.Time, site inventory.SiteID) (int, error) {
	return f.queueDelete(ctx, at, fileop.ReplicaRef{Block: f.Block, Site: site})
}

// QueueDeleteLastCopy is QueueDelete with the explicit opt-in that lets
// the last copy go (a deliberate retirement).
func (f *Federation) QueueDeleteLastCopy(ctx context.Context, at time.Time, site inventory.SiteID) (int, error) {
	return f.queueDelete(ctx, at, fileop.ReplicaRef{Block: f.Block, Site: site, AllowLastCopy: true})
}

func (f *Federation) queueDelete(ctx context.Context, at time.Time, ref fileop.ReplicaRef) (int, error) {
	n := 0
	_, err := f.Store.Write(ctx, at, func(t *inventory.Txn) error {
		var err error
		n, err = fileop.QueueDeletions(ctx, f.Store, t, []fileop.ReplicaRef{ref}, 0)
		return err
	})
	return n, err
}

func writeRandom(path string, size int64, rng *rand.Rand) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	fh, err := os.Create(path)
	if err != nil {
		return "", err
	}
	h := adler32.New()
	w := bufio.NewWriterSize(io.MultiWriter(fh, h), 1<<20)
	buf := make([]byte, 1<<16)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		for i := 0; i < int(n); i += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && i+k < int(n); k++ {
				buf[i+k] = byte(v >> (8 * k))
			}
		}
		if _, err := w.Write(buf[:n]); err != nil {
			fh.Close()
			return "", err
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		fh.Close()
		return "", err
	}
	return fmt.Sprintf("%08x", h.Sum32()), fh.Close()
}
