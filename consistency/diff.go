package consistency

import (
	"bytes"
	"fmt"

	"github.com/dynamo-go/dynamo/internal/glob"
)

// ExpRec is one record of the inventory side of the diff: a file the
// inventory places at the site. Byte slices are valid until the next Next.
type ExpRec struct {
	LFN     []byte
	Size    int64
	Adler32 []byte
	FileID  int64
	BlockID int32
	// State is StatePresent, StateIncoming or StateDeleting.
	State uint8
	// ReplicaUpdate is the block replica's last update, unix seconds.
	ReplicaUpdate int64
}

// InventoryStream yields the files the inventory places at a site in byte
// order of LFN, each once.
type InventoryStream interface {
	Next() bool
	Rec() *ExpRec
	Err() error
	Close() error
}

// Filter says which files the diff may judge. The zero Filter judges
// everything.
type Filter struct {
	// Now is the reference time (unix seconds) for ages.
	Now int64
	// MinAge in seconds: site files modified, and block replicas updated,
	// less than MinAge before Now are too young to judge (a transfer may be
	// landing, a deletion may be under way).
	MinAge int64
	// Paths are the LFN prefixes that were listed; inventory files outside
	// them are not judged (they were not looked for). Empty: everything.
	Paths []string
	// Ignore are glob patterns (internal/glob) of LFNs never judged.
	Ignore []*glob.Pattern
	// InFlight holds LFNs with a transfer to, or a deletion at, the site
	// queued or running: neither missing nor orphan.
	InFlight map[string]struct{}
}

func (f *Filter) ignored(lfn []byte) bool {
	if len(f.Ignore) > 0 {
		s := string(lfn)
		for _, p := range f.Ignore {
			if p.Match(s) {
				return true
			}
		}
	}
	if len(f.InFlight) > 0 {
		if _, ok := f.InFlight[string(lfn)]; ok {
			return true
		}
	}
	return false
}

func (f *Filter) inPaths(lfn []byte) bool {
	if len(f.Paths) == 0 {
		return true
	}
	for _, p := range f.Paths {
		if p == "/" || bytes.HasPrefix(lfn, []byte(p)) && (len(lfn) == len(p) || lfn[len(p)] == '/') {
			return true
		}
	}
	return false
}

func (f *Filter) young(t int64) bool { return f.MinAge > 0 && t > f.Now-f.MinAge }

// Sink receives the differences as the diff finds them. The records are
// only valid during the call. An error stops the diff.
type Sink interface {
	Missing(e *ExpRec) error
	Orphan(s *SiteRec) error
	SizeMismatch(e *ExpRec, s *SiteRec) error
	// Stalled: s is the site's copy when there is one (of the wrong size).
	Stalled(e *ExpRec, s *SiteRec) error
	ChecksumMismatch(e *ExpRec, s *SiteRec) error
}

// Counts are the totals of one diff. Bytes are sums of sizes (the
// inventory's size for missing files, the site's for orphans).
type Counts struct {
	SiteFiles        int64 `json:"site_files" db:"site_files"`
	SiteBytes        int64 `json:"site_bytes" db:"site_bytes"`
	ExpectedFiles    int64 `json:"expected_files" db:"expected_files"`
	ExpectedBytes    int64 `json:"expected_bytes" db:"expected_bytes"`
	Matched          int64 `json:"matched" db:"matched"`
	Missing          int64 `json:"missing" db:"missing"`
	MissingBytes     int64 `json:"missing_bytes" db:"missing_bytes"`
	Orphans          int64 `json:"orphans" db:"orphans"`
	OrphanBytes      int64 `json:"orphan_bytes" db:"orphan_bytes"`
	SizeMismatch     int64 `json:"size_mismatch" db:"size_mismatch"`
	ChecksumMismatch int64 `json:"checksum_mismatch" db:"checksum_mismatch"`
	// Stalled counts files an incomplete replica still expects, absent from
	// the site, with no transfer in flight (see Diff).
	Stalled int64 `json:"stalled" db:"stalled"`
	// Skipped counts files not judged: young, ignored, in flight, or in a
	// replica being transferred or deleted.
	Skipped int64 `json:"skipped" db:"skipped"`
}

// Diff walks the two sorted streams in step (a sorted merge: memory does
// not grow with the listing) and reports each difference to sink.
//
// Classification, for a name on:
//   - both sides: stalled if the replica is incoming, the site's copy has
//     the wrong size, and no transfer is in flight; else skipped if the
//     replica is incoming/deleting, the site file is young, or the name is
//     ignored/in flight; else a size mismatch, else a checksum mismatch when both sides have a checksum,
//     else matched;
//   - the inventory only: missing, unless the replica was updated less
//     than MinAge ago, lies outside Paths, is being deleted, or the name is
//     ignored/in flight; a file an incomplete replica still expects
//     (StateIncoming) is stalled rather than missing: no transfer in
//     flight is bringing it;
//   - the site only: orphan, unless young or ignored/in flight.
//
// A stream out of order is an error (a merge over unsorted input would
// report everything as both missing and orphan).
func Diff(site SiteStream, inv InventoryStream, f Filter, sink Sink) (Counts, error) {
	var c Counts
	var prevS, prevE []byte
	sOK, eOK := site.Next(), inv.Next()
	for sOK || eOK {
		var s *SiteRec
		var e *ExpRec
		if sOK {
			s = site.Rec()
		}
		if eOK {
			e = inv.Rec()
		}
		cmp := 0
		switch {
		case !eOK:
			cmp = -1
		case !sOK:
			cmp = 1
		default:
			cmp = cmpName(s.LFN, e.LFN)
		}
		var err error
		if cmp <= 0 {
			if prevS != nil && cmpName(prevS, s.LFN) >= 0 {
				return c, fmt.Errorf("diff: site listing out of order at %q after %q", s.LFN, prevS)
			}
			prevS = append(prevS[:0], s.LFN...)
			c.SiteFiles++
			c.SiteBytes += s.Size
		}
		if cmp >= 0 {
			if prevE != nil && cmpName(prevE, e.LFN) >= 0 {
				return c, fmt.Errorf("diff: inventory stream out of order at %q after %q", e.LFN, prevE)
			}
			prevE = append(prevE[:0], e.LFN...)
		}
		switch {
		case cmp < 0: // site only
			if f.young(s.ModTime) || f.ignored(s.LFN) {
				c.Skipped++
			} else {
				c.Orphans++
				c.OrphanBytes += s.Size
				err = sink.Orphan(s)
			}
			sOK = site.Next()
		case cmp > 0: // inventory only
			if f.inPaths(e.LFN) {
				c.ExpectedFiles++
				c.ExpectedBytes += e.Size
				switch {
				case e.State == StateDeleting || f.young(e.ReplicaUpdate) || f.ignored(e.LFN):
					c.Skipped++
				case e.State == StateIncoming:
					// Expected by an incomplete replica, absent, and nothing
					// in flight brings it: the transfer was lost.
					c.Stalled++
					err = sink.Stalled(e, nil)
				default:
					c.Missing++
					c.MissingBytes += e.Size
					err = sink.Missing(e)
				}
			}
			eOK = inv.Next()
		default:
			c.ExpectedFiles++
			c.ExpectedBytes += e.Size
			switch {
			case e.State == StateIncoming && s.Size != e.Size && !f.young(s.ModTime) && !f.young(e.ReplicaUpdate) && !f.ignored(s.LFN):
				// A wrong copy where a transfer should land, and none in
				// flight: the transfer (overwriting) was lost.
				c.Stalled++
				err = sink.Stalled(e, s)
			case e.State != StatePresent || f.young(s.ModTime) || f.ignored(s.LFN):
				c.Skipped++
			case s.Size != e.Size:
				c.SizeMismatch++
				err = sink.SizeMismatch(e, s)
			case len(s.Adler32) > 0 && len(e.Adler32) > 0 && !bytes.EqualFold(s.Adler32, e.Adler32):
				c.ChecksumMismatch++
				err = sink.ChecksumMismatch(e, s)
			default:
				c.Matched++
			}
			sOK, eOK = site.Next(), inv.Next()
		}
		if err != nil {
			return c, err
		}
	}
	if err := site.Err(); err != nil {
		return c, fmt.Errorf("diff: site listing: %w", err)
	}
	if err := inv.Err(); err != nil {
		return c, fmt.Errorf("diff: inventory: %w", err)
	}
	return c, nil
}
