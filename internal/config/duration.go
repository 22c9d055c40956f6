package config

import (
	"fmt"
	"time"
)

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30s or 5m", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// Grace returns Serve.ShutdownGrace as a duration (validated by Validate).
func (s Serve) Grace() time.Duration {
	d, _ := parseDuration(s.ShutdownGrace)
	return d
}
