package demo

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strconv"
	"strings"
	"testing"
)

// The demo drives the system only as an operator and a consumer can:
// through the server's APIs. It holds no database handle and no
// inventory store, so it cannot write around the one writer or call a
// component instead of the scheduler; the end-to-end run is
// cmd/dynamo's TestDemo.
func TestDemoHasNoWayAroundTheServer(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	forbiddenImports := map[string]bool{
		"github.com/dynamo-go/dynamo/internal/db": true, // the database, behind the server's back
		"database/sql": true,
	}
	// Types are fine (the API answers are those records); these are the
	// handles through which something would run or write.
	forbiddenUses := map[string]bool{"inventory.Store": true, "inventory.Txn": true, "dealer.Dealer": true,
		"dealer.New": true, "detox.Runner": true, "detox.PlanCycle": true, "scheduler.Scheduler": true,
		"scheduler.New": true, "projects.Manager": true, "fileop.Daemon": true, "fileop.EnqueueTx": true}
	files := 0
	for _, p := range pkgs {
		for name, f := range p.Files {
			files++
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if forbiddenImports[path] {
					t.Errorf("%s imports %s", name, path)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && forbiddenUses[id.Name+"."+sel.Sel.Name] {
					t.Errorf("%s: uses %s.%s at %s", name, id.Name, sel.Sel.Name, fset.Position(sel.Pos()))
				}
				return true
			})
		}
	}
	if files == 0 {
		t.Fatal("no source files parsed: the check would prove nothing")
	}
}

// Without a server to drive there is no demo.
func TestStartNeedsAServer(t *testing.T) {
	if _, err := Start(t.Context(), Options{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no server") {
		t.Fatalf("err = %v", err)
	}
}
