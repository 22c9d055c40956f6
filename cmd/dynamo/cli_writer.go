package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/internal/db"
	"github.com/dynamo-go/dynamo/inventory"
	"github.com/dynamo-go/dynamo/registry/client"
	"github.com/dynamo-go/dynamo/scheduler"
)

// CLI commands that write follow one rule: the inventory has one writer.
// While a server holds the writer lease, the work is sent to it over REST
// (the URL from --server, DYNAMO_SERVER, registry.client.server, else the
// address the holder advertises with its lease), or refused with the
// holder's name and how to reach it. With no live holder the command works
// offline, under the writer lease itself (scheduler.TakeOffline), so that
// a server starting meanwhile stands by instead of writing behind it.

// offlineLeasePeriod is the lease a CLI write holds, renewed while it runs:
// short, so that a server waiting behind a crashed CLI takes over soon.
const offlineLeasePeriod = 10 * time.Second

// sqlitePath returns the file of a sqlite: DSN ("" for another kind).
func sqlitePath(dsn string) string {
	p, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		return ""
	}
	p = strings.TrimPrefix(p, "//")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

// openExisting opens the configured database for a read command: it never
// creates or migrates one, and a database without dynamo's schema is an
// error naming what to do.
func (g *globalOptions) openExisting(ctx context.Context) (*env, error) {
	e, err := g.configure()
	if err != nil {
		return nil, err
	}
	if p := sqlitePath(e.cfg.Database); p != "" {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("database %s does not exist: nothing to read (start `dynamo serve`, or run `dynamo migrate` and inject an inventory first)", e.cfg.Database)
		}
	}
	if err := e.openDB(ctx, false); err != nil {
		return nil, err
	}
	var n int
	if err := e.db.GetContext(ctx, &n, "SELECT COUNT(*) FROM schema_migrations"); err != nil || n == 0 {
		e.db.Close()
		return nil, errors.New("the database has no dynamo schema: nothing to read (start `dynamo serve`, or run `dynamo migrate` first)")
	}
	return e, nil
}

// liveWriter returns the writer lease when a live server holds it. A
// database that does not exist yet, or has no lease table, has none.
func liveWriter(ctx context.Context, e *env) (scheduler.LeaseInfo, bool, error) {
	if p := sqlitePath(e.cfg.Database); p != "" {
		if _, err := os.Stat(p); err != nil {
			return scheduler.LeaseInfo{}, false, nil
		}
	}
	d, err := db.Open(ctx, e.cfg.Database)
	if err != nil {
		return scheduler.LeaseInfo{}, false, err
	}
	defer d.Close()
	l, err := scheduler.ReadLease(ctx, d)
	if err != nil {
		// No lease table yet: no server ever ran here. (An unreachable
		// database failed at Open.)
		return scheduler.LeaseInfo{}, false, nil
	}
	return l, l.Live(time.Now()) && !strings.HasPrefix(l.Holder, "cli:"), nil
}

// writeRoute says where a write command goes: a client of the live
// writer, or nil to work offline. what names the command in a refusal;
// remoteOK false refuses outright when a server holds the lease (the
// command has no REST equivalent, e.g. generating a synthetic inventory).
func writeRoute(ctx context.Context, g *globalOptions, api *apiFlags, what string, remoteOK bool) (*client.Client, error) {
	e, err := g.configure()
	if err != nil {
		return nil, err
	}
	l, live, err := liveWriter(ctx, e)
	if err != nil || !live {
		return nil, err
	}
	if !remoteOK {
		return nil, fmt.Errorf("%s refused: the server %s holds the inventory writer lease (until %s); stop it first, or use a database of its own",
			what, l.Holder, l.Expires.Local().Format(time.RFC3339))
	}
	if api == nil {
		api = &apiFlags{g: g}
	}
	o, err := api.resolved()
	if err != nil {
		return nil, err
	}
	if o.Server == "" {
		o.Server = l.Address
	}
	if o.Server == "" {
		return nil, fmt.Errorf("%s refused: the server %s holds the inventory writer lease (until %s) and a write from here would go behind its back; send it to that server with --server URL, %s, or registry.client.server in the configuration",
			what, l.Holder, l.Expires.Local().Format(time.RFC3339), appEnvServer)
	}
	c, err := client.New(o)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// offlineWriter opens and migrates the database, loads the inventory and
// takes the writer lease for this command: every write of the returned
// store is fenced by it. done releases the lease and closes the database.
func (g *globalOptions) offlineWriter(ctx context.Context) (*env, *inventory.Store, func(), error) {
	e, err := g.open(ctx, true)
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := e.loadInventory(ctx)
	if err != nil {
		e.db.Close()
		return nil, nil, nil, err
	}
	release, err := holdOffline(ctx, e, s)
	if err != nil {
		e.db.Close()
		return nil, nil, nil, err
	}
	return e, s, func() {
		release()
		e.db.Close()
	}, nil
}

// holdOffline takes the writer lease for this command over store (see
// scheduler.TakeOffline); release gives it back.
func holdOffline(ctx context.Context, e *env, s *inventory.Store) (release func(), err error) {
	host, _ := os.Hostname()
	o, err := scheduler.TakeOffline(ctx, s, fmt.Sprintf("cli:%s:%d", host, os.Getpid()), offlineLeasePeriod)
	if err != nil {
		return nil, fmt.Errorf("taking the writer lease for this command: %w", err)
	}
	return func() {
		if err := o.Close(); err != nil {
			e.log.WithError(err).Warn("writer lease not released; a server takes over when it expires")
		}
	}, nil
}

// remoteOnlyFlags refuses flags a running server cannot honour (it runs
// its components with its own configuration).
func remoteOnlyFlags(what string, set map[string]bool) error {
	for name, on := range set {
		if on {
			return usageError{fmt.Errorf("%s: --%s cannot be used while a server holds the writer lease: the server runs with its own configuration (stop it, or drop the flag)", what, name)}
		}
	}
	return nil
}

// runRemoteApp runs a scheduler application on the writer and waits for
// its end; the result is printed like `dynamo app run --wait`.
func runRemoteApp(ctx context.Context, g *globalOptions, c *client.Client, app string, args []string, readOnly bool) error {
	var out struct {
		Data scheduler.Run `json:"data"`
	}
	req := scheduler.RunNowRequest{Args: args, ReadOnly: readOnly, Wait: true, By: os.Getenv("USER")}
	if err := c.Do(ctx, http.MethodPost, "/api/v1/apps/"+url.PathEscape(app)+"/run", nil, req, &out); err != nil {
		return fmt.Errorf("%s on the running server: %w", app, err)
	}
	r := out.Data
	if r.Ended == nil {
		fmt.Fprintf(g.stdout, "run %d of %s on the running server: still %s (see: dynamo app runs %s)\n", r.ID, r.App, r.Status, r.App)
		return nil
	}
	fmt.Fprintf(g.stdout, "run %d of %s on the running server: %s in %s, %d updates applied\n", r.ID, r.App, r.Status,
		r.Ended.Sub(r.Started).Round(time.Millisecond), r.Updates)
	if r.Status != scheduler.StatusOK {
		return fmt.Errorf("run %d %s: %s", r.ID, r.Status, r.Error)
	}
	return nil
}
