package xrootd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dynamo-go/dynamo/fileop/driver"
)

// tmpPrefix names in-flight uploads; List returns them (see
// driver.IsTemporary).
const tmpPrefix = driver.TempPrefix

// xrdfs prints times in the client's local zone.
const timeLayout = "2006-01-02 15:04:05"

// Stat implements driver.Driver with "xrdfs stat".
func (x *XRootD) Stat(ctx context.Context, p string) (driver.Entry, error) {
	rel, abs, err := x.resolve(p)
	if err != nil {
		return driver.Entry{}, err
	}
	ctx, cancel := x.metaCtx(ctx)
	defer cancel()
	out, err := x.xrdfsRun(ctx, "stat", abs, "stat", abs)
	if err != nil {
		return driver.Entry{}, err
	}
	e, err := parseStat(string(out))
	if err != nil {
		return driver.Entry{}, driver.NewError(ctx, "stat", x.urlOf(abs), driver.ErrServer, "", err)
	}
	e.Name = path.Base("/" + rel)
	if rel == "" {
		e.Name = ""
	}
	return e, nil
}

// parseStat reads the "Key: value" block xrdfs stat prints.
func parseStat(out string) (driver.Entry, error) {
	var e driver.Entry
	seen := 0
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return e, fmt.Errorf("stat Size %q: %w", v, err)
			}
			e.Size = n
			seen++
		case "MTime":
			if t, err := time.ParseInLocation(timeLayout, v, time.Local); err == nil {
				e.ModTime = t
			}
		case "Flags":
			e.IsDir = strings.Contains(v, "IsDir")
			seen++
		}
	}
	if seen < 2 {
		return e, fmt.Errorf("unrecognised stat output %q", out)
	}
	if e.IsDir {
		e.Size = 0
	}
	return e, nil
}

// lsRe matches one "xrdfs ls -l" line:
// "-rw-r--r-- owner group 6 2026-11-21 13:00:36 /data/a/b/file one.txt".
// The path is everything after the time, so names may contain spaces.
var lsRe = regexp.MustCompile(`^(\S+)\s+\S+\s+\S+\s+(\d+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s(.+)$`)

// List implements driver.Driver with "xrdfs ls -l", parsing stdout line by
// line as the tool prints it (the server sends dirlist in chunks).
func (x *XRootD) List(ctx context.Context, dir string, fn driver.ListFunc) error {
	_, abs, err := x.resolve(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := x.command(ctx, x.xrdfs, x.addr, "ls", "-l", abs)
	var errb strings.Builder
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return driver.NewError(ctx, "list", x.urlOf(abs), driver.ErrServer, "", err)
	}
	if err := cmd.Start(); err != nil {
		return driver.NewError(ctx, "list", x.urlOf(abs), driver.ErrUnsupported, "", err)
	}
	prefix := strings.TrimSuffix(abs, "/") + "/"
	var perr error
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		m := lsRe.FindStringSubmatch(line)
		if m == nil {
			perr = driver.NewError(ctx, "list", x.urlOf(abs), driver.ErrServer, "", fmt.Errorf("unparseable ls line %q", line))
			break
		}
		if m[4] == abs {
			// ls -l of a file lists the file itself.
			perr = driver.NewError(ctx, "list", x.urlOf(abs), driver.ErrNotDir, "", nil)
			break
		}
		name, ok := strings.CutPrefix(m[4], prefix)
		if !ok || name == "" || strings.Contains(name, "/") {
			perr = driver.NewError(ctx, "list", x.urlOf(abs), driver.ErrServer, "", fmt.Errorf("entry %q outside %s", m[4], abs))
			break
		}
		e := driver.Entry{Name: name, IsDir: strings.HasPrefix(m[1], "d")}
		if !e.IsDir {
			e.Size, _ = strconv.ParseInt(m[2], 10, 64)
		}
		if t, err := time.ParseInLocation(timeLayout, m[3], time.Local); err == nil {
			e.ModTime = t
		}
		if err := fn(e); err != nil {
			perr = err
			break
		}
	}
	if perr != nil {
		cancel() // stop the tool; its exit status no longer matters
		_ = cmd.Wait()
		return perr
	}
	if err := sc.Err(); err != nil {
		cancel()
		_ = cmd.Wait()
		return driver.NewError(ctx, "list", x.urlOf(abs), driver.ErrServer, "", err)
	}
	if err := cmd.Wait(); err != nil {
		return x.toolError(ctx, "list", abs, err, errb.String())
	}
	return nil
}

// Mkdir implements driver.Driver with "xrdfs mkdir -p".
func (x *XRootD) Mkdir(ctx context.Context, dir string) error {
	_, abs, err := x.resolve(dir)
	if err != nil {
		return err
	}
	ctx, cancel := x.metaCtx(ctx)
	defer cancel()
	_, err = x.xrdfsRun(ctx, "mkdir", abs, "mkdir", "-p", abs)
	return err
}

// refine asks Stat what p is when a tool gave no specific error (xrdfs rm
// of a directory says only "no such device").
func (x *XRootD) refine(ctx context.Context, op, abs string, err error) error {
	if errors.Is(err, driver.ErrNotFound) || !driver.Recoverable(err) && !errors.Is(err, driver.ErrNotEmpty) {
		return err
	}
	e, serr := x.Stat(ctx, strings.TrimPrefix(abs, x.root))
	switch {
	case serr != nil:
		return err
	case op == "remove" && e.IsDir:
		return driver.NewError(ctx, op, x.urlOf(abs), driver.ErrIsDir, "", err)
	case op == "rmdir" && !e.IsDir:
		return driver.NewError(ctx, op, x.urlOf(abs), driver.ErrNotDir, "", err)
	}
	return err
}

// Remove implements driver.Driver with "xrdfs rm".
func (x *XRootD) Remove(ctx context.Context, p string) error {
	_, abs, err := x.resolve(p)
	if err != nil {
		return err
	}
	ctx, cancel := x.metaCtx(ctx)
	defer cancel()
	if _, err := x.xrdfsRun(ctx, "remove", abs, "rm", abs); err != nil {
		// rm of a directory fails with unrelated texts ("no such device",
		// "directory not empty"); say what it really is.
		return x.refine(ctx, "remove", abs, err)
	}
	return nil
}

// Rmdir implements driver.Driver with "xrdfs rmdir".
func (x *XRootD) Rmdir(ctx context.Context, dir string) error {
	_, abs, err := x.resolve(dir)
	if err != nil {
		return err
	}
	ctx, cancel := x.metaCtx(ctx)
	defer cancel()
	// xrootd answers rmdir of a missing path with success, so look first:
	// Rmdir's contract promises ErrNotFound (and ErrNotDir for a file).
	e, err := x.Stat(ctx, dir)
	if err != nil {
		return err
	}
	if !e.IsDir {
		return driver.NewError(ctx, "rmdir", x.urlOf(abs), driver.ErrNotDir, "", nil)
	}
	_, err = x.xrdfsRun(ctx, "rmdir", abs, "rmdir", abs)
	return err
}

// Rename implements driver.Renamer with "xrdfs mv" (which replaces an
// existing target), creating the target's parent when it is missing.
func (x *XRootD) Rename(ctx context.Context, from, to string) error {
	_, af, err := x.resolve(from)
	if err != nil {
		return err
	}
	_, at, err := x.resolve(to)
	if err != nil {
		return err
	}
	ctx, cancel := x.metaCtx(ctx)
	defer cancel()
	return x.mv(ctx, "rename", af, at)
}

func (x *XRootD) mv(ctx context.Context, op, af, at string) error {
	_, err := x.xrdfsRun(ctx, op, af, "mv", af, at)
	if err == nil || !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	// Not found: the source, or the target's parent?
	if _, serr := x.xrdfsRun(ctx, op, af, "stat", af); serr != nil {
		return err
	}
	if _, merr := x.xrdfsRun(ctx, op, path.Dir(at), "mkdir", "-p", path.Dir(at)); merr != nil {
		return merr
	}
	_, err = x.xrdfsRun(ctx, op, af, "mv", af, at)
	return err
}

// Checksum implements driver.Checksummer with "xrdfs query checksum"; the
// server must be configured for adler32 (xrootd.chksum adler32).
func (x *XRootD) Checksum(ctx context.Context, p, algo string) (string, error) {
	_, abs, err := x.resolve(p)
	if err != nil {
		return "", err
	}
	if algo != driver.AlgoAdler32 {
		return "", driver.NewError(ctx, "checksum", x.urlOf(abs), driver.ErrUnsupported, "", fmt.Errorf("algorithm %q", algo))
	}
	ctx, cancel := x.metaCtx(ctx)
	defer cancel()
	out, err := x.xrdfsRun(ctx, "checksum", abs, "query", "checksum", abs)
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return "", driver.NewError(ctx, "checksum", x.urlOf(abs), driver.ErrServer, "", fmt.Errorf("unrecognised reply %q", out))
	}
	if !strings.EqualFold(f[0], "adler32") {
		return "", driver.NewError(ctx, "checksum", x.urlOf(abs), driver.ErrUnsupported, "", fmt.Errorf("server computes %s, not adler32", f[0]))
	}
	v := strings.ToLower(f[1])
	if len(v) > 8 {
		return "", driver.NewError(ctx, "checksum", x.urlOf(abs), driver.ErrServer, "", fmt.Errorf("bad adler32 %q", f[1]))
	}
	return strings.Repeat("0", 8-len(v)) + v, nil
}

// Space implements driver.SpaceReporter with "xrdfs spaceinfo".
func (x *XRootD) Space(ctx context.Context, p string) (driver.Space, error) {
	_, abs, err := x.resolve(p)
	if err != nil {
		return driver.Space{}, err
	}
	ctx, cancel := x.metaCtx(ctx)
	defer cancel()
	out, err := x.xrdfsRun(ctx, "space", abs, "spaceinfo", abs)
	if err != nil {
		return driver.Space{}, err
	}
	var sp driver.Space
	seen := 0
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Total":
			sp.Total, seen = n, seen+1
		case "Used":
			sp.Used, seen = n, seen+1
		}
	}
	if seen != 2 {
		return driver.Space{}, driver.NewError(ctx, "space", x.urlOf(abs), driver.ErrServer, "", fmt.Errorf("unrecognised spaceinfo output %q", out))
	}
	return sp, nil
}
