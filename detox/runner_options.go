package detox

import (
	"runtime"
	"time"
)

// PlanOptions are the options a cycle of partition plans with under this
// runner's configuration and sources, at time at (zero: the planner's
// now). Every planner of a partition (the cycle, `dynamo detox explain`
// and `diff`) takes them from here so they decide alike.
func (r *Runner) PlanOptions(partition string, at time.Time) PlanOptions {
	pc := r.Config.Partitions[partition]
	return PlanOptions{At: at, Sources: r.Sources, DeletionPerIteration: r.Config.Step(partition),
		AllowLastCopyDeletion: pc.AllowLastCopyDeletion, CopyCounts: pc.CopyCounts, Workers: r.Config.Workers(), Log: r.Log}
}

// workers is how many goroutines the cycle may plan with.
func (o PlanOptions) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}
