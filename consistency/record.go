package consistency

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// SiteFile is one file seen in a site listing. LFN is the path below the
// site's storage root, which is the logical file name ("/store/...").
type SiteFile struct {
	LFN string
	// Size in bytes.
	Size int64
	// ModTime is the modification time in unix seconds; 0 when the site did
	// not report one (such a file is never "young" and never past grace:
	// orphans without a time are reported but not deleted).
	ModTime int64
	// Adler32 is the site's checksum (8 hex digits) or "" when not asked for
	// or not offered.
	Adler32 string
}

// Replica states of an expected file (ExpRec.State).
const (
	// StatePresent: the inventory says the file is at the site.
	StatePresent uint8 = iota
	// StateIncoming: the file's block replica is incomplete and the file is
	// not yet among its present files: a transfer is expected to bring it.
	// Neither missing nor orphan.
	StateIncoming
	// StateDeleting: the block replica is pending deletion; the file may be
	// there or already gone. Neither missing nor orphan.
	StateDeleting
)

// errCorrupt marks a spool or inventory dump file that does not decode.
var errCorrupt = errors.New("corrupt record file")

// recordWriter writes length-prefixed binary records to a buffered file.
type recordWriter struct {
	f   *os.File
	w   *bufio.Writer
	tmp [binary.MaxVarintLen64]byte
}

func createRecordFile(path string) (*recordWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &recordWriter{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (w *recordWriter) uvarint(v uint64) {
	n := binary.PutUvarint(w.tmp[:], v)
	w.w.Write(w.tmp[:n])
}

func (w *recordWriter) varint(v int64) {
	n := binary.PutVarint(w.tmp[:], v)
	w.w.Write(w.tmp[:n])
}

func (w *recordWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	w.w.WriteString(s)
}

// WriteSite appends a SiteFile.
func (w *recordWriter) WriteSite(f *SiteFile) {
	w.str(f.LFN)
	w.varint(f.Size)
	w.varint(f.ModTime)
	w.str(f.Adler32)
}

// writeExpected appends an expected file (the fields of ExpRec).
func (w *recordWriter) writeExpected(lfn, ck []byte, size, fileID int64, block int32, state uint8, update int64) {
	w.uvarint(uint64(len(lfn)))
	w.w.Write(lfn)
	w.varint(size)
	w.uvarint(uint64(len(ck)))
	w.w.Write(ck)
	w.varint(fileID)
	w.varint(int64(block))
	w.varint(int64(state))
	w.varint(update)
}

// Close flushes, syncs and closes the file.
func (w *recordWriter) Close() error {
	err := w.w.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// recordReader decodes records; names are read into a reused buffer so
// that the hot merge loop does not allocate per record.
type recordReader struct {
	path string
	f    *os.File
	r    *bufio.Reader
	name []byte
	ck   []byte
	err  error
}

func openRecordFile(path string, bufSize int) (*recordReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &recordReader{path: path, f: f, r: bufio.NewReaderSize(f, bufSize)}, nil
}

func (r *recordReader) fail(err error) {
	if r.err == nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("%s: %w: %w", r.path, errCorrupt, err)
	}
}

func (r *recordReader) bytesInto(dst []byte) []byte {
	n, err := binary.ReadUvarint(r.r)
	if err != nil {
		r.fail(err)
		return dst[:0]
	}
	if n > 1<<16 {
		r.fail(fmt.Errorf("name length %d", n))
		return dst[:0]
	}
	if uint64(cap(dst)) < n {
		dst = make([]byte, n, n*2)
	}
	dst = dst[:n]
	if _, err := io.ReadFull(r.r, dst); err != nil {
		r.fail(err)
	}
	return dst
}

func (r *recordReader) varint() int64 {
	v, err := binary.ReadVarint(r.r)
	if err != nil {
		r.fail(err)
	}
	return v
}

// atEOF reports a clean end of file (between records).
func (r *recordReader) atEOF() bool {
	if r.err != nil {
		return true
	}
	_, err := r.r.Peek(1)
	if err == io.EOF {
		return true
	}
	if err != nil {
		r.fail(err)
		return true
	}
	return false
}

// nextSite decodes the next SiteFile into the reader's buffers; the name
// stays valid until the next call. ok is false at the end or on error.
func (r *recordReader) nextSite() (name []byte, size, mtime int64, ck []byte, ok bool) {
	if r.atEOF() {
		return nil, 0, 0, nil, false
	}
	r.name = r.bytesInto(r.name)
	size = r.varint()
	mtime = r.varint()
	r.ck = r.bytesInto(r.ck)
	return r.name, size, mtime, r.ck, r.err == nil
}

func (r *recordReader) Close() error { return r.f.Close() }

// cmpName is the byte order both dialects sort LFNs in.
func cmpName(a, b []byte) int { return bytes.Compare(a, b) }
