package logpattern

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// fixtures are the realistic log samples in testdata, one kind of log each.
var fixtures = []string{"access", "goerrors", "java", "k8s"}

// readLines returns the lines of testdata/name.log.
func readLines(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// formatTemplates renders templates one a line as count<TAB>template,
// without IDs, which depend on the order of the lines.
func formatTemplates(ts []Template) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "%d\t%s\n", t.Count, t.Template)
	}
	return b.String()
}

// TestTemplatesGolden mines each fixture with the default options and
// compares the templates with testdata/<fixture>.golden. Run with -update
// to rewrite them, then read the diff: each golden file is the reviewed
// statement of what the miner makes of that kind of log.
func TestTemplatesGolden(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			m := New(Options{})
			for _, line := range readLines(t, name) {
				m.Add(line)
			}
			got := formatTemplates(m.Templates())
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("templates differ from %s (run with -update and inspect the diff):\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
