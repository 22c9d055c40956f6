package consistency

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Report list names: the NDJSON files of a run, one difference per line.
const (
	ListMissing          = "missing"
	ListOrphans          = "orphans"
	ListSizeMismatch     = "size_mismatch"
	ListChecksumMismatch = "checksum_mismatch"
	ListStalled          = "stalled"
	ListEmptyDirs        = "empty_dirs"
	ListTemporary        = "temporary"
	ListActions          = "actions"
)

// Lists are the report lists every run has.
var Lists = []string{ListMissing, ListOrphans, ListSizeMismatch, ListChecksumMismatch, ListStalled, ListEmptyDirs, ListTemporary, ListActions}

// Difference is one line of a report list.
type Difference struct {
	LFN         string `json:"lfn"`
	Size        int64  `json:"size"`
	SiteSize    *int64 `json:"site_size,omitempty"`
	Adler32     string `json:"adler32,omitempty"`
	SiteAdler32 string `json:"site_adler32,omitempty"`
	ModTime     int64  `json:"mtime,omitempty"`
	FileID      int64  `json:"file_id,omitempty"`
	BlockID     int32  `json:"block_id,omitempty"`
}

// reportWriter is the Sink that writes each difference to its list.
type reportWriter struct {
	dir   string
	files map[string]*os.File
	bufs  map[string]*bufio.Writer
	err   error
}

func newReportWriter(dir string) (*reportWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	w := &reportWriter{dir: dir, files: map[string]*os.File{}, bufs: map[string]*bufio.Writer{}}
	for _, l := range Lists {
		if l == ListEmptyDirs || l == ListTemporary || l == ListActions {
			continue // written by the run
		}
		f, err := os.Create(filepath.Join(dir, l+".ndjson"))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("report: %w", err)
		}
		w.files[l], w.bufs[l] = f, bufio.NewWriter(f)
	}
	return w, nil
}

func (w *reportWriter) put(list string, d *Difference) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.bufs[list].Write(b)
	return err
}

func (w *reportWriter) Missing(e *ExpRec) error {
	return w.put(ListMissing, &Difference{LFN: string(e.LFN), Size: e.Size, Adler32: string(e.Adler32), FileID: e.FileID, BlockID: e.BlockID})
}

func (w *reportWriter) Stalled(e *ExpRec, s *SiteRec) error {
	d := &Difference{LFN: string(e.LFN), Size: e.Size, Adler32: string(e.Adler32), FileID: e.FileID, BlockID: e.BlockID}
	if s != nil {
		sz := s.Size
		d.SiteSize, d.ModTime = &sz, s.ModTime
	}
	return w.put(ListStalled, d)
}

func (w *reportWriter) Orphan(s *SiteRec) error {
	return w.put(ListOrphans, &Difference{LFN: string(s.LFN), Size: s.Size, ModTime: s.ModTime, SiteAdler32: string(s.Adler32)})
}

func (w *reportWriter) SizeMismatch(e *ExpRec, s *SiteRec) error {
	sz := s.Size
	return w.put(ListSizeMismatch, &Difference{LFN: string(e.LFN), Size: e.Size, SiteSize: &sz, ModTime: s.ModTime, FileID: e.FileID, BlockID: e.BlockID})
}

func (w *reportWriter) ChecksumMismatch(e *ExpRec, s *SiteRec) error {
	return w.put(ListChecksumMismatch, &Difference{LFN: string(e.LFN), Size: e.Size, Adler32: string(e.Adler32), SiteAdler32: string(s.Adler32), ModTime: s.ModTime, FileID: e.FileID, BlockID: e.BlockID})
}

// Close flushes and closes every list.
func (w *reportWriter) Close() error {
	var errs []error
	for l, f := range w.files {
		if b := w.bufs[l]; b != nil {
			errs = append(errs, b.Flush())
		}
		errs = append(errs, f.Close())
	}
	w.files = nil
	return errors.Join(errs...)
}

// writeNDJSON writes values as one JSON document per line.
func writeNDJSON[T any](path string, vals []T) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for i := range vals {
		if err := enc.Encode(&vals[i]); err != nil {
			f.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readNDJSON calls fn for each line of path decoded into a T.
func readNDJSON[T any](path string, fn func(T) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var v T
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}
