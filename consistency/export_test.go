package consistency

import (
	"context"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// WrapDriver makes c open sites through wrap (tests inject failures).
func WrapDriver(c *Checker, wrap func(driver.Driver) driver.Driver) {
	c.open = func(ctx context.Context, url string, opts driver.Options) (driver.Driver, error) {
		d, err := driver.Open(ctx, url, opts)
		if err != nil {
			return nil, err
		}
		return wrap(d), nil
	}
}
