package policy

import "fmt"

// CheckPolicyFile loads a Detox policy and reports every problem, for
// `dynamo detox check`. With partitionsPath it also loads the partitions
// file and requires the policy's partition to be defined there.
// partitionOverride names the partition for files without a Partition line
// (see PolicyOptions). Each returned error prints as "file:line:col: message"
// (or "file: message" for whole-file problems). No errors means the file is
// valid.
func CheckPolicyFile(policyPath, partitionsPath, partitionOverride string) []error {
	var out []error
	pol, err := LoadPolicy(policyPath, PolicyOptions{Partition: partitionOverride})
	out = append(out, Errors(err)...)
	if partitionsPath == "" {
		return out
	}
	parts, err := LoadPartitions(partitionsPath)
	if err != nil {
		return append(out, Errors(err)...)
	}
	if pol != nil {
		if _, ok := parts.Lookup(pol.Partition); !ok {
			e := &Error{Kind: ErrPolicy, File: policyPath, Line: pol.PartitionLine, Col: 1, Text: pol.Partition,
				Msg: "partition not defined in " + partitionsPath}
			if h := didYouMean(pol.Partition, parts.Names()); h != "" {
				e.Hint = "did you mean " + h + "?"
			} else {
				e.Hint = fmt.Sprintf("defined partitions: %v", parts.Names())
			}
			if pol.PartitionLine == 0 {
				e.Col = 0
			}
			out = append(out, e)
		}
	}
	return out
}

// CheckPartitionsFile loads a partitions file and reports every problem.
func CheckPartitionsFile(path string) []error {
	_, err := LoadPartitions(path)
	return Errors(err)
}

// CheckEnforcerFile loads an enforcer rules file and reports every problem.
func CheckEnforcerFile(path string) []error {
	_, err := LoadEnforcerRules(path)
	return Errors(err)
}
