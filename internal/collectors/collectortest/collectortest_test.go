package collectortest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

const importPath = "github.com/correlator/correlator/internal/collectors/collectortest"

// TestOnlyTestsImport: no file of the module but a _test.go file imports
// this package, so that test fakes never reach the binary.
func TestOnlyTestsImport(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == importPath {
				t.Errorf("%s imports %s; only tests may", p, importPath)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stopTB records how a helper stopped the test: Fatal or Skip end the
// goroutine, as testing does.
type stopTB struct {
	testing.TB
	failed, skipped bool
}

func (s *stopTB) Helper()           {}
func (s *stopTB) Fatal(args ...any) { s.failed = true; runtime.Goexit() }
func (s *stopTB) Skip(args ...any)  { s.skipped = true; runtime.Goexit() }

// TestRequireBinary: a missing binary skips the test, or fails it when
// RequireEnv is 1.
func TestRequireBinary(t *testing.T) {
	for _, require := range []string{"", "1"} {
		t.Setenv(RequireEnv, require)
		s := &stopTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			RequireBinary(s, "correlator-no-such-binary")
		}()
		<-done
		if s.failed != (require == "1") || s.skipped != (require == "") {
			t.Errorf("%s=%q: failed %v, skipped %v", RequireEnv, require, s.failed, s.skipped)
		}
	}
}
