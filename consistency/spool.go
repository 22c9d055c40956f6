package consistency

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Spool turns the site listing, which arrives per directory from parallel
// workers in no useful order, into a byte-sorted stream with bounded
// memory: records are buffered up to a byte budget, sorted and written as a
// run file; Merge reads the runs back through a k-way merge. Memory is the
// buffer budget while spooling, and one read buffer per run while merging.
//
// A Spool is not safe for concurrent use; the lister serialises access.
type Spool struct {
	dir     string
	budget  int
	buf     []SiteFile
	bufSize int
	runs    []string
	seq     int
}

// runBufSize is the read buffer per run during the merge.
const runBufSize = 128 << 10

// NewSpool returns a spool writing run files into dir (created if needed),
// flushing a run whenever the buffered records take about budget bytes.
// existing lists run files already written by an earlier, interrupted
// listing (from its checkpoint); they are merged with the new ones.
func NewSpool(dir string, budget int, existing []string) (*Spool, error) {
	if budget <= 0 {
		budget = 64 << 20
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: dir, budget: budget, runs: slices.Clone(existing)}
	for _, r := range existing {
		var n int
		if _, err := fmt.Sscanf(filepath.Base(r), "run-%06d.bin", &n); err == nil && n >= s.seq {
			s.seq = n + 1
		}
	}
	return s, nil
}

// recOverhead approximates the memory of one buffered record besides its
// name: the SiteFile struct and the string header of the checksum.
const recOverhead = 64

// Add buffers files, writing a run when the budget is reached.
func (s *Spool) Add(files ...SiteFile) error {
	for _, f := range files {
		s.buf = append(s.buf, f)
		s.bufSize += len(f.LFN) + len(f.Adler32) + recOverhead
		if s.bufSize >= s.budget {
			if err := s.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Flush writes the buffered records, sorted, as a new run file.
func (s *Spool) Flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	path := s.nextRun()
	if err := writeSortedRun(path+".tmp", s.buf); err != nil {
		return err
	}
	// The rename makes a run appear only when complete, so a checkpoint
	// never names a half-written run.
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.seq++
	s.runs = append(s.runs, path)
	clear(s.buf)
	s.buf, s.bufSize = s.buf[:0], 0
	return nil
}

func (s *Spool) nextRun() string { return filepath.Join(s.dir, fmt.Sprintf("run-%06d.bin", s.seq)) }

// Adopt makes a sorted run file written elsewhere (by writeSortedRun, on
// the same file system) one of the spool's runs, renaming it.
func (s *Spool) Adopt(sortedRun string) error {
	path := s.nextRun()
	if err := os.Rename(sortedRun, path); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.seq++
	s.runs = append(s.runs, path)
	return nil
}

// writeSortedRun sorts files in place and writes them to path.
func writeSortedRun(path string, files []SiteFile) error {
	slices.SortFunc(files, func(a, b SiteFile) int { return strings.Compare(a.LFN, b.LFN) })
	w, err := createRecordFile(path)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for i := range files {
		w.WriteSite(&files[i])
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("spool: write %s: %w", path, err)
	}
	return nil
}

// Runs returns the run files written so far (after Flush: all records).
func (s *Spool) Runs() []string { return slices.Clone(s.runs) }

// SiteRec is one record of a sorted site stream. The byte slices are only
// valid until the next call to Next.
type SiteRec struct {
	LFN     []byte
	Size    int64
	ModTime int64
	Adler32 []byte
}

// SiteStream yields the site's files in byte order of LFN, each once.
type SiteStream interface {
	Next() bool
	Rec() *SiteRec
	Err() error
	Close() error
}

// MergeRuns opens a byte-sorted stream over run files. Duplicate names
// (which a correct listing does not produce) are emitted once.
func MergeRuns(runs []string) (SiteStream, error) {
	srcs := make([]sortedSource[SiteRec], 0, len(runs))
	for _, p := range runs {
		r, err := openRecordFile(p, runBufSize)
		if err != nil {
			for _, s := range srcs {
				s.Close()
			}
			return nil, fmt.Errorf("spool: %w", err)
		}
		srcs = append(srcs, &siteRun{r: r})
	}
	m, err := newKmerge(srcs, func(r *SiteRec) []byte { return r.LFN }, func(dst, src *SiteRec) {
		dst.LFN = append(dst.LFN[:0], src.LFN...)
		dst.Adler32 = append(dst.Adler32[:0], src.Adler32...)
		dst.Size, dst.ModTime = src.Size, src.ModTime
	})
	if err != nil {
		return nil, err // not m: a nil *kmerge in an interface is not nil
	}
	return m, nil
}

// siteRun streams one sorted run file of the listing.
type siteRun struct {
	r   *recordReader
	rec SiteRec
}

func (s *siteRun) Next() bool {
	name, size, mt, ck, ok := s.r.nextSite()
	s.rec = SiteRec{LFN: name, Size: size, ModTime: mt, Adler32: ck}
	return ok
}

func (s *siteRun) Rec() *SiteRec { return &s.rec }
func (s *siteRun) Err() error    { return s.r.err }
func (s *siteRun) Close() error  { return s.r.Close() }
