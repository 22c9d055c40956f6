package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGood(t *testing.T) {
	cases := []struct {
		in   string
		ctx  Context
		want string // canonical rendering
	}{
		{"dataset.name == /*/*/RAW and dataset.on_tape != FULL", ContextReplica, "dataset.name == /*/*/RAW and dataset.on_tape != FULL"},
		{"blockreplica.owner == IB RelVal and site.storage_type == DISK", ContextReplica, "blockreplica.owner == IB RelVal and site.storage_type == DISK"},
		{"blockreplica.owner == None", ContextReplica, "blockreplica.owner == None"},
		{"dataset.last_update older_than 1 week ago", ContextReplica, "dataset.last_update older_than 1 week ago"},
		{"replica.first_block_created newer_than January 1", ContextReplica, "replica.first_block_created newer_than January 1"},
		{"not blockreplica.on_tape", ContextReplica, "not blockreplica.on_tape"},
		{"not not blockreplica.on_tape", ContextReplica, "blockreplica.on_tape"},
		{"not (blockreplica.on_tape)", ContextReplica, "not (blockreplica.on_tape)"},
		{"site.name in [T*_MSS T0_CH_CERN_Disk T1_*_Disk T2_*]", ContextSite, "site.name in [T*_MSS T0_CH_CERN_Disk T1_*_Disk T2_*]"},
		{"site.name in [ T2_US_XYZ, T3_US_XYZ ]", ContextSite, "site.name in [T2_US_XYZ T3_US_XYZ]"},
		{"site.name in [T2_[AB]* T3_*]", ContextSite, "site.name in [T2_[AB]* T3_*]"},
		{"site.status != MORGUE and site.occupancy < 0.85", ContextSite, "site.status != MORGUE and site.occupancy < 0.85"},
		{"site.status == morgue", ContextSite, "site.status == morgue"},
		{"always", ContextSite, "always"},
		{"never or always", ContextReplica, "never or always"},
		{"dataset.name =~ /[^/]+/[^/]+/GEN-SIM(?:-RECO|)$ and dataset.last_update newer_than 12 months ago", ContextReplica,
			"dataset.name =~ /[^/]+/[^/]+/GEN-SIM(?:-RECO|)$ and dataset.last_update newer_than 12 months ago"},
		{"(dataset.name =~ /a/(b|c)) or replica.incomplete", ContextReplica, "dataset.name =~ /a/(b|c) or replica.incomplete"},
		{"replica.incomplete or dataset.size > 2 TB and dataset.usage_rank >= 3", ContextReplica, "replica.incomplete or dataset.size > 2 TB and dataset.usage_rank >= 3"},
		{"(replica.incomplete or dataset.size > 2 TB) and dataset.usage_rank >= 3", ContextReplica, "(replica.incomplete or dataset.size > 2 TB) and dataset.usage_rank >= 3"},
		{"((site.name == T2_*))", ContextSite, "site.name == T2_*"},
		{"(site.name == T2_* )", ContextSite, "site.name == T2_*"},
		{`blockreplica.owner == "a or b"`, ContextReplica, `blockreplica.owner == "a or b"`},
		{"replica.group_name == DataOps and replica.has_locked_block", ContextReplica, "replica.group_name == DataOps and replica.has_locked_block"},
		{"site.occupancy>0.9", ContextSite, "site.occupancy > 0.9"},
		{"dataset.status in [VALID PRODUCTION]", ContextReplica, "dataset.status in [VALID PRODUCTION]"},
		{"replica.num_access notin [0 1]", ContextReplica, "replica.num_access notin [0 1]"},
	}
	for _, c := range cases {
		cond, err := ParseCondition(c.in, c.ctx)
		if err != nil {
			t.Errorf("ParseCondition(%q): %v", c.in, err)
			continue
		}
		if got := cond.String(); got != c.want {
			t.Errorf("ParseCondition(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseAliases(t *testing.T) {
	c, err := ParseCondition("replica.has_locked_block and replica.group_name == DataOps", ContextReplica)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range c.Variables() {
		names = append(names, v.Name)
	}
	if got := strings.Join(names, ","); got != "blockreplica.is_locked,blockreplica.owner" {
		t.Errorf("aliases resolved to %s", got)
	}
	if got := strings.Join(c.RequiredAttrs(), ","); got != ProducerLocks {
		t.Errorf("RequiredAttrs = %s", got)
	}
}

func TestParseTyped(t *testing.T) {
	c, err := ParseCondition("dataset.size > 1.5 TB and dataset.status == valid and site.name == T2_* and dataset.name == /a/b/c", ContextReplica)
	if err != nil {
		t.Fatal(err)
	}
	terms := c.Root.(*And).Terms
	if v := terms[0].(*Predicate).Value; v.Bytes != 1_500_000_000_000 {
		t.Errorf("bytes = %d", v.Bytes)
	}
	if v := terms[1].(*Predicate).Value; DatasetStatuses[v.Enum] != "VALID" {
		t.Errorf("enum = %d", v.Enum)
	}
	if v := terms[2].(*Predicate).Value; v.Glob == nil {
		t.Error("T2_* not a glob")
	}
	if v := terms[3].(*Predicate).Value; v.Glob != nil {
		t.Error("/a/b/c is a glob")
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		in   string
		ctx  Context
		kind error
		col  int
		text string
		msg  string // substring of the whole message
	}{
		{"dataset.nmae == /a/b/c", ContextReplica, ErrUnknownVariable, 1, "dataset.nmae", "did you mean dataset.name?"},
		{"dataset.status == PRODUCTON", ContextReplica, ErrUnknownValue, 19, "PRODUCTON", "did you mean PRODUCTION? one of: UNKNOWN, DELETED, DEPRECATED, INVALID, PRODUCTION, VALID, IGNORED"},
		{"site.storage_type == TAPE", ContextSite, ErrUnknownValue, 22, "TAPE", "one of: DISK, MSS, BUFFER, UNKNOWN"},
		{"dataset.on_tape in [FULL SOME]", ContextReplica, ErrUnknownValue, 26, "SOME", "NONE, PARTIAL, FULL"},
		{"site.occupancy > 0.9", ContextReplica, ErrScope, 1, "site.occupancy", "only available in site conditions"},
		{"dataset.name == x", ContextSite, ErrScope, 1, "dataset.name", "variable not available in a site condition"},
		{"dataset.last_update older_than 1 wek ago", ContextReplica, ErrTime, 32, "1 wek ago", `unknown time unit "wek"; did you mean week?`},
		{"dataset.last_update == 1 week ago", ContextReplica, ErrType, 1, "dataset.last_update ==", "operator == does not apply to dataset.last_update (time)"},
		{"dataset.name", ContextReplica, ErrType, 1, "dataset.name", "is a string, not a boolean"},
		{"replica.incomplete == 1", ContextReplica, ErrType, 1, "replica.incomplete ==", "use the variable alone, or not replica.incomplete"},
		{"dataset.usage_rank > high", ContextReplica, ErrType, 22, "high", "not a number"},
		{"dataset.size > 3 XB", ContextReplica, ErrType, 16, "3 XB", "not a size"},
		{"dataset.name =~ /a/(?=b)", ContextReplica, ErrRegex, 17, "/a/(?=b)", "invalid regular expression"},
		{"site.name == T2_[AB*", ContextSite, ErrType, 14, "T2_[AB*", "invalid glob"},
		{"dataset.name ~= x", ContextReplica, ErrSyntax, 14, "~=", "did you mean !=?"},
		{"dataset.name in [a b", ContextReplica, ErrSyntax, 17, "[a b", "unclosed ["},
		{"dataset.name in a b", ContextReplica, ErrSyntax, 17, "a", "expected [ after in"},
		{"dataset.name in []", ContextReplica, ErrSyntax, 17, "[]", "empty list"},
		{"dataset.name ==", ContextReplica, ErrSyntax, 14, "==", "missing value"},
		{"(dataset.name == x", ContextReplica, ErrSyntax, 1, "(", "unclosed ("},
		{"replica.incomplete)", ContextReplica, ErrSyntax, 19, ")", "unbalanced )"},
		{"replica.incomplete and", ContextReplica, ErrSyntax, 23, "", "expected a condition"},
		{"", ContextReplica, ErrSyntax, 1, "", "expected a condition"},
		{"== x", ContextReplica, ErrSyntax, 1, "==", "expected a variable"},
		{`blockreplica.owner == "abc`, ContextReplica, ErrSyntax, 23, `"abc`, "unterminated"},
		{"replica.incomplete replica.size", ContextReplica, ErrSyntax, 20, "replica.size", "unknown operator"},
	}
	for _, c := range cases {
		_, err := ParseCondition(c.in, c.ctx)
		if err == nil {
			t.Errorf("ParseCondition(%q): no error", c.in)
			continue
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("ParseCondition(%q): %T is not *Error", c.in, err)
			continue
		}
		if !errors.Is(err, c.kind) || pe.Col != c.col || pe.Text != c.text || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseCondition(%q):\n got  %v (kind %v col %d text %q)\n want kind %v col %d text %q containing %q",
				c.in, err, pe.Kind, pe.Col, pe.Text, c.kind, c.col, c.text, c.msg)
		}
	}
}

func TestParseCollectsAllErrors(t *testing.T) {
	_, err := ParseCondition("dataset.nmae == x and dataset.status == NOPE and site.occupancy > 1", ContextReplica)
	if n := len(Errors(err)); n != 3 {
		t.Errorf("got %d errors, want 3: %v", n, err)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{Kind: ErrUnknownVariable, File: "p.txt", Line: 3, Col: 9, Text: "dataset.nmae", Msg: "unknown variable", Hint: "did you mean dataset.name?"}
	if got, want := e.Error(), `p.txt:3:9: unknown variable: "dataset.nmae"; did you mean dataset.name?`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	e = &Error{Kind: ErrPolicy, File: "p.txt", Msg: "missing On line (target sites)"}
	if got, want := e.Error(), "p.txt: missing On line (target sites)"; got != want {
		t.Errorf("got %s want %s", got, want)
	}
}
