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
	return Check(CheckRequest{Policy: policyPath, Partitions: partitionsPath, Partition: partitionOverride})
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

// CheckRequest is everything `dynamo detox check` can be asked to verify.
type CheckRequest struct {
	Policy     string   // Detox policy file; "" to skip
	Partitions string   // partitions file; "" to skip
	Partition  string   // partition for policy files without a Partition line
	Enforcer   []string // enforcer rules files (Dealer); their partitions must exist too
}

// Check runs every check the request names and returns all problems, each
// printing as one "file:line:col: message" line. The partitions file is
// checked once even when a policy is given too.
func Check(req CheckRequest) []error {
	var out []error
	var parts *Partitions
	if req.Partitions != "" {
		var err error
		if parts, err = LoadPartitions(req.Partitions); err != nil {
			out = append(out, Errors(err)...)
		}
	}
	if req.Policy != "" {
		pol, err := LoadPolicy(req.Policy, PolicyOptions{Partition: req.Partition})
		out = append(out, Errors(err)...)
		if pol != nil && parts != nil {
			out = append(out, partitionDefined(parts, req.Partitions, req.Policy, pol.Partition, pol.PartitionLine)...)
		}
	}
	for _, f := range req.Enforcer {
		er, err := LoadEnforcerRules(f)
		out = append(out, Errors(err)...)
		if er != nil && parts != nil {
			out = append(out, partitionDefined(parts, req.Partitions, f, er.Partition, 0)...)
		}
	}
	return out
}

// partitionDefined reports name missing from parts.
func partitionDefined(parts *Partitions, partsPath, file, name string, line int) []error {
	if _, ok := parts.Lookup(name); ok {
		return nil
	}
	e := &Error{Kind: ErrPolicy, File: file, Line: line, Text: name, Msg: "partition not defined in " + partsPath}
	if line > 0 {
		e.Col = 1
	}
	if h := didYouMean(name, parts.Names()); h != "" {
		e.Hint = "did you mean " + h + "?"
	} else {
		e.Hint = fmt.Sprintf("defined partitions: %v", parts.Names())
	}
	return []error{e}
}
