package inventory

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// ProgressPrinter prints a large write's progress to w at most once a
// second, so a small document prints nothing and a campaign shows it is
// moving. Both `dynamo inventory inject` and its benchmark use it, so
// the benchmark measures the printing the command does.
func ProgressPrinter(w io.Writer, now func() time.Time) func(Progress) {
	var mu sync.Mutex
	start := now()
	last := start
	return func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		t := now()
		if t.Sub(last) < time.Second {
			return
		}
		last = t
		switch p.Phase {
		case "build":
			fmt.Fprintf(w, "inject: validated %d of %d datasets (%s)\n", p.Done, p.Total, t.Sub(start).Round(time.Second))
		default:
			fmt.Fprintf(w, "inject: wrote %d of %d updates (%s)\n", p.Done, p.Total, t.Sub(start).Round(time.Second))
		}
	}
}
