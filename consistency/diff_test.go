package consistency

import (
	"strings"
	"testing"

	"github.com/dynamo-go/dynamo/internal/glob"
	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

type sliceSite struct {
	recs []SiteRec
	i    int
}

func (s *sliceSite) Next() bool    { s.i++; return s.i <= len(s.recs) }
func (s *sliceSite) Rec() *SiteRec { return &s.recs[s.i-1] }
func (s *sliceSite) Err() error    { return nil }
func (s *sliceSite) Close() error  { return nil }

type sliceInv struct {
	recs []ExpRec
	i    int
}

func (s *sliceInv) Next() bool   { s.i++; return s.i <= len(s.recs) }
func (s *sliceInv) Rec() *ExpRec { return &s.recs[s.i-1] }
func (s *sliceInv) Err() error   { return nil }
func (s *sliceInv) Close() error { return nil }

type recSink struct{ got []string }

func (r *recSink) Missing(e *ExpRec) error {
	r.got = append(r.got, "missing "+string(e.LFN))
	return nil
}
func (r *recSink) Orphan(s *SiteRec) error {
	r.got = append(r.got, "orphan "+string(s.LFN))
	return nil
}
func (r *recSink) SizeMismatch(e *ExpRec, s *SiteRec) error {
	r.got = append(r.got, "size "+string(e.LFN))
	return nil
}
func (r *recSink) Stalled(e *ExpRec, s *SiteRec) error {
	r.got = append(r.got, "stalled "+string(e.LFN))
	return nil
}
func (r *recSink) ChecksumMismatch(e *ExpRec, s *SiteRec) error {
	r.got = append(r.got, "checksum "+string(e.LFN))
	return nil
}

func site(name string, size, mt int64, ck string) SiteRec {
	return SiteRec{LFN: []byte(name), Size: size, ModTime: mt, Adler32: []byte(ck)}
}

func exp(name string, size int64, ck string, state uint8) ExpRec {
	return ExpRec{LFN: []byte(name), Size: size, Adler32: []byte(ck), State: state, ReplicaUpdate: 100}
}

func TestDiffClassification(t *testing.T) {
	tmp, _ := glob.Compile("*.tmp")
	f := Filter{Now: 1000, MinAge: 100, Paths: []string{"/s"}, Ignore: []*glob.Pattern{tmp},
		InFlight: map[string]struct{}{"/s/inflight": {}, "/s/incoming-inflight": {}}}
	// "/s/b-c" sorts before "/s/b/x" ('-' < '/'): byte order, not path order.
	s := &sliceSite{recs: []SiteRec{
		site("/s/a", 1, 10, ""),
		site("/s/b-c", 1, 10, ""),
		site("/s/b/x", 2, 10, "0000000a"),
		site("/s/ck", 3, 10, "0000000b"),
		site("/s/deleting", 1, 10, ""),
		site("/s/incoming-landed", 1, 10, ""),
		site("/s/incoming-wrong", 1, 10, ""),
		site("/s/inflight", 1, 10, ""),
		site("/s/j.tmp", 1, 10, ""),
		site("/s/size", 5, 10, ""),
		site("/s/young", 1, 950, ""),
	}}
	inv := &sliceInv{recs: []ExpRec{
		exp("/other/out-of-paths", 1, "", StatePresent),
		exp("/s/a", 1, "", StatePresent),
		exp("/s/b/x", 2, "0000000A", StatePresent),
		exp("/s/ck", 3, "0000000c", StatePresent),
		exp("/s/deleting", 1, "", StateDeleting),
		exp("/s/gone", 4, "", StatePresent),
		exp("/s/incoming", 1, "", StateIncoming),
		exp("/s/incoming-inflight", 1, "", StateIncoming),
		exp("/s/incoming-landed", 1, "", StateIncoming),
		exp("/s/incoming-wrong", 2, "", StateIncoming),
		exp("/s/size", 4, "", StatePresent),
	}}
	sink := &recSink{}
	c, err := Diff(s, inv, f, sink)
	if err != nil {
		t.Fatal(err)
	}
	want := "orphan /s/b-c|checksum /s/ck|missing /s/gone|stalled /s/incoming|stalled /s/incoming-wrong|size /s/size"
	if got := strings.Join(sink.got, "|"); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if c.Matched != 2 || c.Skipped != 6 || c.Stalled != 2 || c.SiteFiles != 11 || c.ExpectedFiles != 10 || c.MissingBytes != 4 || c.OrphanBytes != 1 {
		t.Errorf("counts %+v", c)
	}
}

func TestDiffRejectsUnsortedInput(t *testing.T) {
	s := &sliceSite{recs: []SiteRec{site("/b", 1, 0, ""), site("/a", 1, 0, "")}}
	if _, err := Diff(s, &sliceInv{}, Filter{}, &recSink{}); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("err %v", err)
	}
	inv := &sliceInv{recs: []ExpRec{exp("/b", 1, "", 0), exp("/b", 1, "", 0)}}
	if _, err := Diff(&sliceSite{}, inv, Filter{}, &recSink{}); err == nil {
		t.Error("duplicate inventory names accepted")
	}
}

func TestSpoolMergeSortsAndDedups(t *testing.T) {
	sp, err := NewSpool(t.TempDir(), 200, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"/z", "/a/b", "/a-b", "/a/a", "/m", "/a/b", "/\xff", "/A"}
	for _, n := range names {
		if err := sp.Add(SiteFile{LFN: n, Size: int64(len(n))}); err != nil {
			t.Fatal(err)
		}
	}
	sp.Flush()
	if len(sp.Runs()) < 2 {
		t.Fatalf("budget 200 should give several runs, got %d", len(sp.Runs()))
	}
	got := collect(t, sp.Runs())
	want := []string{"/A 2", "/a-b 4", "/a/a 4", "/a/b 4", "/m 2", "/z 2", "/\xff 2"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"concurrency: 0", "concurrency"},
		{"max_missing_fraction: 2", "max_missing_fraction"},
		{"orphan_grace: 1h\nmin_age: 2h", "orphan_grace"},
		{"ignore: ['[a']", "ignore"},
		{"sites: {T2_A: {paths: [store]}}", "must be absolute"},
		{"sites: {T2_A: {}}", "sites.T2_A.paths: empty"},
		{"sites: {T2_A: {paths: [/store, /store/mc]}}", "overlap"},
		{"bogus: 1", "1:1: bogus: unknown key"},
	} {
		_, err := yamlconf.Read(strings.NewReader(tc.yaml), DecodeConfig)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
	c, err := yamlconf.Read(strings.NewReader("sites: {T2_A: {paths: [/store/mc], url: 'file:///x'}}\nmin_age: 1h"), DecodeConfig)
	if err != nil || c.MinAge.Hours() != 1 || c.MaxOrphans != 1000 {
		t.Errorf("good config: %+v %v", c, err)
	}
}
