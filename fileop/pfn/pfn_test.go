package pfn

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dynamo-go/dynamo/internal/yamlconf"
)

func load(t *testing.T, name string) (*Mapper, error) {
	t.Helper()
	return yamlconf.Load(filepath.Join("testdata", name), func(n *yaml.Node) (*Mapper, error) {
		var c Config
		if err := yamlconf.Decode(n, &c); err != nil {
			return nil, fmt.Errorf("site T2_TEST: %w", err)
		}
		return Compile("T2_TEST", c)
	})
}

func TestToPFN(t *testing.T) {
	m, err := load(t, "good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lfn, proto, want string
		err              error
	}{
		// First matching chain wins: the user chain shadows the general one.
		{"/store/user/jdoe/f.root", "davs", "davs://user-se.example.org:443/user/jdoe/f.root", nil},
		{"/store/mc/A/B/f.root", "davs", "davs://se.example.org:443/cms/store/mc/A/B/f.root", nil},
		// Chains apply rule after rule; named groups and \1 both work.
		{"/store/data/f.root", "root", "root://xrd.example.org//eos/cms/store/data/f.root", nil},
		// Match is anchored at the start, like Python re.match.
		{"/other/store/x", "davs", "", ErrNoMatch},
		// A chain whose second rule cannot apply is skipped entirely.
		{"/nostore/x", "root", "", ErrNoMatch},
		{"/store/x", "srm", "", ErrNoProtocol},
	} {
		got, err := m.ToPFN(tc.lfn, tc.proto)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ToPFN(%q, %q) = %q, %v; want %v", tc.lfn, tc.proto, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ToPFN(%q, %q) = %q, %v; want %q", tc.lfn, tc.proto, got, err, tc.want)
		}
	}
}

func TestBadConfigs(t *testing.T) {
	for file, want := range map[string]string{
		"bad_regex.bad.yaml":   `protocol "davs" chain 0 rule 0: bad lfn regex "^/store/(.*"`,
		"bad_group.bad.yaml":   "refers to group 2 but the regex has 1",
		"bad_letters.bad.yaml": `unknown group "1x"`,
		"unknown_key.bad.yaml": "unknown_key.bad.yaml:2:50: davs[0][0].protocol: unknown key",
		"empty_chain.bad.yaml": `protocol "davs" chain 0: empty chain`,
	} {
		_, err := load(t, file)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "T2_TEST") {
			t.Errorf("%s: error %v, want one naming the site and containing %q", file, err, want)
		}
	}
}

func TestCompileReportsEveryBadRule(t *testing.T) {
	_, err := Compile("S", Config{"a": {{{LFN: "("}}, {{LFN: "x", PFN: "$3"}}}})
	if err == nil || !strings.Contains(err.Error(), "chain 0 rule 0") || !strings.Contains(err.Error(), "chain 1 rule 0") {
		t.Fatalf("got %v, want both bad rules reported", err)
	}
}
