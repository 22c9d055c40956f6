package scheduler_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// One writer, by construction: the capability to write the inventory's
// database (inventory.WriteCapability, which Store.Seal hands out once)
// reaches the scheduler only, the scheduler takes it in one place of the
// serve assembly, and no package but inventory writes the inventory tables
// in SQL. This scans every non-test Go file of the module; a second path to
// the raw store fails it, naming the file and line.
func TestOneWriterPath(t *testing.T) {
	root := filepath.Join("..")
	allowSeal := map[string]bool{"scheduler/writer.go": true, "scheduler/offline.go": true}
	allowOwn := map[string]bool{"cmd/dynamo/serve_scheduler.go": true}
	// Benchmark fixtures fill a database of their own before any server
	// exists; they never run inside `dynamo serve`.
	allowSQL := map[string]bool{"consistency/bench.go": true}
	const tables = `(sites|owner_groups|partitions|quotas|datasets|blocks|files|dataset_replicas|block_replicas|block_replica_files|inventory_changes)`
	sqlWrite := regexp.MustCompile(`\b(INSERT\s+(IGNORE\s+)?INTO|REPLACE\s+INTO)\s+` + tables + `\s*\(|\bUPDATE\s+` + tables + `\s+SET\b|\bDELETE\s+FROM\s+` + tables + `\b`)
	fset := token.NewFileSet()
	files, owns := 0, 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "vendor" || (strings.HasPrefix(n, ".") && n != "..") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		pkgDir := filepath.ToSlash(filepath.Dir(rel))
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.SelectorExpr:
				switch x.Sel.Name {
				case "Seal":
					if pkgDir != "inventory" && !allowSeal[rel] {
						t.Errorf("%s: calls Seal: only the scheduler may take the inventory's write capability", fset.Position(x.Pos()))
					}
				case "OwnInventoryWrites":
					switch {
					case allowOwn[rel]:
						owns++
					case pkgDir != "scheduler":
						t.Errorf("%s: calls OwnInventoryWrites: the serve assembly does, once", fset.Position(x.Pos()))
					}
				}
			case *ast.Ident:
				if x.Name == "WriteCapability" && pkgDir != "inventory" && pkgDir != "scheduler" {
					t.Errorf("%s: names WriteCapability outside inventory and the scheduler", fset.Position(x.Pos()))
				}
			case *ast.BasicLit:
				if x.Kind != token.STRING || pkgDir == "inventory" || allowSQL[rel] {
					return true
				}
				if s, err := strconv.Unquote(x.Value); err == nil && sqlWrite.MatchString(s) {
					t.Errorf("%s: writes an inventory table in SQL: inventory writes go through inventory.Store and the scheduler", fset.Position(x.Pos()))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("scanned only %d files: wrong root?", files)
	}
	// And the assembly does hand the capability over: without it every
	// component of `dynamo serve` would write around the lease.
	if owns != 1 {
		t.Errorf("the serve assembly calls OwnInventoryWrites %d times; want once", owns)
	}
}
