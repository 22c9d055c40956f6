package inventory

import (
	"fmt"
	"strings"
)

// Name rules. They follow the CMS lexicon where it is stricter than needed
// only in refusing characters that break URLs, SQL LIKE patterns or shells:
// a name that passes here is safe in a path, a query string and a log line.

const (
	maxSiteName    = 64
	maxGroupName   = 64
	maxDatasetName = 512
	maxBlockName   = 128
	maxLFN         = 512
)

func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == '+'
}

func checkToken(what, s string, max int, extra string) error {
	if s == "" {
		return fmt.Errorf("%s: empty", what)
	}
	if len(s) > max {
		return fmt.Errorf("%s %q: longer than %d characters", what, s, max)
	}
	for i := 0; i < len(s); i++ {
		if !nameChar(s[i]) && strings.IndexByte(extra, s[i]) < 0 {
			return fmt.Errorf("%s %q: character %q at offset %d is not allowed (letters, digits and _-.+%s)", what, s, s[i], i, extra)
		}
	}
	return nil
}

// CheckSiteName validates a site name such as T2_US_MIT.
func CheckSiteName(s string) error { return checkToken("site name", s, maxSiteName, "") }

// CheckGroupName validates a group name such as AnalysisOps. Spaces are
// allowed: production has a group called "IB RelVal".
func CheckGroupName(s string) error { return checkToken("group name", s, maxGroupName, " ") }

// CheckPartitionName validates a partition name (spaces allowed, as groups).
func CheckPartitionName(s string) error { return checkToken("partition name", s, maxGroupName, " ") }

// CheckDatasetName validates /Primary/Processed/TIER: three non-empty
// components, each of name characters (the processed part may also hold
// '#'-free punctuation used by CMS such as '-').
func CheckDatasetName(s string) error {
	if len(s) > maxDatasetName {
		return fmt.Errorf("dataset name %q: longer than %d characters", s, maxDatasetName)
	}
	parts := strings.Split(s, "/")
	if len(parts) != 4 || parts[0] != "" {
		return fmt.Errorf("dataset name %q: want /Primary/Processed/TIER", s)
	}
	for i, what := range []string{"primary", "processed", "tier"} {
		if err := checkToken("dataset name "+s+": "+what+" part", parts[i+1], maxDatasetName, ""); err != nil {
			return err
		}
	}
	return nil
}

// CheckBlockName validates the part of a block name after '#'.
func CheckBlockName(s string) error { return checkToken("block name", s, maxBlockName, "") }

// SplitBlockName splits "dataset#block" into its two validated halves.
func SplitBlockName(full string) (dataset, block string, err error) {
	i := strings.LastIndexByte(full, '#')
	if i < 0 {
		return "", "", fmt.Errorf("block %q: want dataset#block", full)
	}
	dataset, block = full[:i], full[i+1:]
	if err := CheckDatasetName(dataset); err != nil {
		return "", "", fmt.Errorf("block %q: %w", full, err)
	}
	if err := CheckBlockName(block); err != nil {
		return "", "", fmt.Errorf("block %q: %w", full, err)
	}
	return dataset, block, nil
}

// CheckLFN validates a logical file name: an absolute, clean path.
func CheckLFN(s string) error {
	if s == "" || s[0] != '/' {
		return fmt.Errorf("LFN %q: must be an absolute path", s)
	}
	if len(s) > maxLFN {
		return fmt.Errorf("LFN %q: longer than %d characters", s, maxLFN)
	}
	for _, el := range strings.Split(s[1:], "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("LFN %q: empty, '.' or '..' path element", s)
		}
		if err := checkToken("LFN "+s+": element", el, maxLFN, ""); err != nil {
			return err
		}
	}
	return nil
}

// CheckAdler32 validates an adler32 checksum: 8 lower-case hex digits, or
// empty when unknown.
func CheckAdler32(s string) error {
	if s == "" {
		return nil
	}
	if len(s) != 8 {
		return fmt.Errorf("adler32 %q: want 8 hex digits", s)
	}
	for i := 0; i < 8; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("adler32 %q: want 8 lower-case hex digits", s)
		}
	}
	return nil
}
