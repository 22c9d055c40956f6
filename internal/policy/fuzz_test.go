package policy

import (
	"os"
	"testing"
)

// FuzzParseCondition: the parser must never panic, and whatever it accepts
// must render to text that parses back to the same tree and compiles.
func FuzzParseCondition(f *testing.F) {
	for _, s := range []string{
		"dataset.name == /*/*/RAW and dataset.on_tape != FULL",
		"blockreplica.owner == IB RelVal and site.storage_type == DISK",
		"site.name in [T*_MSS T0_CH_CERN_Disk T1_*_Disk T2_*]",
		"(dataset.name =~ /a/(b|c)) or not (replica.incomplete)",
		"dataset.last_update older_than 1 week ago and replica.size > 1.5 TB",
		"not not blockreplica.on_tape or always",
		`blockreplica.owner == "x and y"`,
		"dataset.name =~ /[^/]+/[^/]+/GEN-SIM(?:-RECO|)$",
		"replica.num_access notin [0, 1] and dataset.status in [VALID PRODUCTION]",
		"((site.name == T2_* ) and site.occupancy>0.9",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	b := fullBindings()
	f.Fuzz(func(t *testing.T, text string, replica bool) {
		ctx := ContextSite
		if replica {
			ctx = ContextReplica
		}
		c, err := ParseCondition(text, ctx)
		if err != nil {
			for _, e := range Errors(err) {
				if _, ok := e.(*Error); !ok {
					t.Fatalf("error %T is not *Error: %v", e, e)
				}
			}
			return
		}
		out := c.String()
		c2, err := ParseCondition(out, ctx)
		if err != nil {
			t.Fatalf("rendering %q of %q does not parse: %v", out, text, err)
		}
		if c2.String() != out {
			t.Fatalf("round trip: %q -> %q -> %q", text, out, c2.String())
		}
		m, err := Compile(c, b, testNow)
		if err != nil {
			t.Fatalf("%q parses but does not compile: %v", text, err)
		}
		m.Match(&rep{name: "/a/b/c"})
	})
}

// FuzzParsePolicy: policy and partitions files must never panic the parsers,
// and every failure must be positioned *Errors.
func FuzzParsePolicy(f *testing.F) {
	for _, path := range []string{"testdata/cache.txt", "testdata/campaign-nopartition.txt", "testdata/partitions.txt", "testdata/bad/scope-and-types.txt"} {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src))
	}
	f.Add("Partition P\nOn always\nWhen always\nUntil never\nA: [B, C]\nDismiss\n")
	f.Fuzz(func(t *testing.T, src string) {
		_, err := ParsePolicy("f", []byte(src), PolicyOptions{})
		for _, e := range Errors(err) {
			if _, ok := e.(*Error); !ok {
				t.Fatalf("error %T is not *Error: %v", e, e)
			}
		}
		_, _ = ParsePartitions("f", []byte(src))
	})
}
