package glob

import "testing"

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pat, name string
		want      bool
	}{
		{"/ZeroBias/*", "/ZeroBias/Run2018A-v1/MINIAOD", true},
		{"/*/*/AOD", "/A/B/AOD", true},
		{"/*/*/AOD", "/A/B/MINIAOD", false},
		{"/A/B?/C", "/A/B1/C", true},
		{"/A/[xy]/C", "/A/y/C", true},
		{"/A/[!xy]/C", "/A/y/C", false},
		{"a.b", "axb", false},
	} {
		p, err := Compile(tc.pat)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(tc.name); got != tc.want {
			t.Errorf("%s ~ %s = %v, want %v", tc.pat, tc.name, got, tc.want)
		}
	}
	if _, err := Compile("/A/[bc"); err == nil {
		t.Error("unclosed class accepted")
	}
}
