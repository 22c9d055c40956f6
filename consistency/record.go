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

// Record files (spool runs, inventory runs, the inventory cache) start
// with recordMagic, whose last byte is the format version: a file of
// another format is refused rather than misread.
const recordMagic = "dynrec\x02"

// recordWriter writes binary records to a buffered file. Names are
// front-coded: each is stored as the length of the prefix it shares with
// the previous record's name and the rest. Record files are sorted, and
// LFNs in sorted order share most of their length ("/store/mc/Era/...")
// so this cuts the bytes written and read by about three quarters.
type recordWriter struct {
	f    *os.File
	w    *bufio.Writer
	tmp  [binary.MaxVarintLen64]byte
	prev []byte
}

func createRecordFile(path string) (*recordWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := &recordWriter{f: f, w: bufio.NewWriterSize(f, 256<<10)}
	w.w.WriteString(recordMagic)
	return w, nil
}

// name appends a front-coded name.
func (w *recordWriter) name(b []byte) {
	shared := sharedPrefix(w.prev, b)
	w.uvarint(uint64(shared))
	w.uvarint(uint64(len(b) - shared))
	w.w.Write(b[shared:])
	w.prev = append(w.prev[:0], b...)
}

// sharedPrefix is the length of the prefix b shares with prev.
func sharedPrefix[S string | []byte](prev []byte, b S) int {
	n := min(len(b), len(prev), 1<<16-1)
	i := 0
	for i < n && b[i] == prev[i] {
		i++
	}
	return i
}

func (w *recordWriter) uvarint(v uint64) {
	n := binary.PutUvarint(w.tmp[:], v)
	w.w.Write(w.tmp[:n])
}

func (w *recordWriter) varint(v int64) {
	n := binary.PutVarint(w.tmp[:], v)
	w.w.Write(w.tmp[:n])
}

// nameString is name for a string, without converting it.
func (w *recordWriter) nameString(s string) {
	shared := sharedPrefix(w.prev, s)
	w.uvarint(uint64(shared))
	w.uvarint(uint64(len(s) - shared))
	w.w.WriteString(s[shared:])
	w.prev = append(w.prev[:0], s...)
}

func (w *recordWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	w.w.WriteString(s)
}

// WriteSite appends a SiteFile.
func (w *recordWriter) WriteSite(f *SiteFile) {
	w.nameString(f.LFN)
	w.varint(f.Size)
	w.varint(f.ModTime)
	w.str(f.Adler32)
}

// writeExpected appends an expected file (the fields of ExpRec).
func (w *recordWriter) writeExpected(lfn, ck []byte, size, fileID int64, block int32, state uint8, update int64) {
	w.name(lfn)
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
	r := &recordReader{path: path, f: f, r: bufio.NewReaderSize(f, bufSize)}
	var magic [len(recordMagic)]byte
	if _, err := io.ReadFull(r.r, magic[:]); err != nil || string(magic[:]) != recordMagic {
		f.Close()
		return nil, fmt.Errorf("%s: %w: not a record file of this version", path, errCorrupt)
	}
	return r, nil
}

// nameInto decodes a front-coded name into dst, which must hold the
// previous record's name (the reader's own buffer does).
func (r *recordReader) nameInto(dst []byte) []byte {
	shared, err := binary.ReadUvarint(r.r)
	if err != nil {
		r.fail(err)
		return dst[:0]
	}
	n, err := binary.ReadUvarint(r.r)
	if err != nil {
		r.fail(err)
		return dst[:0]
	}
	if shared > uint64(len(dst)) || n > 1<<16 {
		r.fail(fmt.Errorf("name of %d+%d bytes after one of %d", shared, n, len(dst)))
		return dst[:0]
	}
	total := int(shared + n)
	if cap(dst) < total {
		grown := make([]byte, total, total*2)
		copy(grown, dst[:shared])
		dst = grown
	}
	dst = dst[:total]
	if _, err := io.ReadFull(r.r, dst[shared:]); err != nil {
		r.fail(err)
	}
	return dst
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
	r.name = r.nameInto(r.name)
	size = r.varint()
	mtime = r.varint()
	r.ck = r.bytesInto(r.ck)
	return r.name, size, mtime, r.ck, r.err == nil
}

func (r *recordReader) Close() error { return r.f.Close() }

// cmpName is the byte order both dialects sort LFNs in.
func cmpName(a, b []byte) int { return bytes.Compare(a, b) }
