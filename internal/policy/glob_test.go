package policy

import "testing"

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"/*/*/RAW", "/A/B/RAW", true},
		{"/*/*/RAW", "/A/B/RAW-RECO", false},
		{"/*/*/RAW", "/A/B/C/RAW", true}, // fnmatch * crosses /
		{"/*/*/NANOAOD*", "/A/B/NANOAODSIM", true},
		{"T*_MSS", "T1_US_FNAL_MSS", true},
		{"T*_MSS", "T1_US_FNAL_Disk", false},
		{"T2_*", "T2_", true},
		{"T2_*", "T1_X", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "acb", false},
		{"*aa", "aaa", true},
		{"ab*ba", "aba", false},
		{"?", "x", true},
		{"?", "", false},
		{"?", "é", true},
		{"/SingleMuon/Run2016?-18Apr2017-v?/AOD", "/SingleMuon/Run2016C-18Apr2017-v1/AOD", true},
		{"/SingleMuon/Run2016?-18Apr2017-v?/AOD", "/SingleMuon/Run2016-18Apr2017-v1/AOD", false},
		{"T2_[AB]*", "T2_AT_Vienna", true},
		{"T2_[AB]*", "T2_CH_CERN", false},
		{"T2_[!AB]*", "T2_CH_CERN", true},
		{"T2_[!AB]*", "T2_BE_IIHE", false},
		{"v[0-9]", "v7", true},
		{"v[0-9]", "vx", false},
		{"[]]", "]", true},
		{"a[b", "a[b", true}, // unclosed [ is literal
		{"a[b*", "a[bcd", true},
		{"*", "", true},
		{"**", "anything", true},
		{"a?c*", "abcdef", true},
		{"*x?", "axbxc", true},
		{"*x?", "axb", true},
		{"*x?", "ax", false},
	}
	for _, c := range cases {
		if got := compileGlob(c.pat).match(c.s); got != c.want {
			t.Errorf("glob %q match %q = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}
