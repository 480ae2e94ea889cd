package fileimport

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		path string
		want event.Kind
		ok   bool
	}{
		{"changes.ndjson", event.KindChanges, true},
		{"/data/errors-2026-11.ndjson.gz", event.KindErrors, true},
		{"logs_part1.json", event.KindLogs, true},
		{"metrics.ndjson", event.KindMetrics, true},
		{"services.json", event.KindServices, true},
		{"traces.ndjson", "", false},
		{"changelog.ndjson", "", false},
	} {
		got, ok := KindOf(tc.path)
		if got != tc.want || ok != tc.ok {
			t.Errorf("KindOf(%q) = %q, %v; want %q, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExpandOrdersTopologyAndChangesFirst(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"logs.ndjson", "errors.ndjson", "changes.ndjson", "services.ndjson", "notes.txt"} {
		write(t, dir, n, "")
	}
	files, err := Expand([]string{dir}, "")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, f := range files {
		kinds = append(kinds, string(f.Kind))
	}
	if got := strings.Join(kinds, ","); got != "services,changes,errors,logs" {
		t.Errorf("order = %s (notes.txt must be skipped)", got)
	}
	if _, err := Expand([]string{write(t, dir, "mystery.ndjson", "")}, ""); err == nil || !strings.Contains(err.Error(), "--kind") {
		t.Errorf("a file without a kind in its name: %v", err)
	}
	if files, err := Expand([]string{filepath.Join(dir, "mystery.ndjson")}, event.KindChanges); err != nil || files[0].Kind != event.KindChanges {
		t.Errorf("--kind should name the kind: %v %v", files, err)
	}
	if _, err := Expand([]string{filepath.Join(dir, "missing.ndjson")}, ""); err == nil {
		t.Error("a missing file was accepted")
	}
}

type collect struct{ b event.Batch }

func (c *collect) Add(_ context.Context, b *event.Batch) error {
	c.b.Append(b)
	return nil
}

func TestImportGzipWithABadLine(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`{"time":"2026-11-02T10:00:00Z","kind":"deploy","service":"api","version":"v2"}
{"time":"2026-11-02T10:01:00Z","kind":"deploy"}
{"time":"2026-11-02T10:02:00Z","kind":"flag","service":"web"}
`))
	zw.Close()
	dir := t.TempDir()
	p := write(t, dir, "changes.ndjson.gz", buf.String())
	files, err := Expand([]string{p}, "")
	if err != nil {
		t.Fatal(err)
	}
	var c collect
	res, err := Import(context.Background(), files[0], &c, time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 || res.Rejected != 1 || len(res.Errors) != 1 || res.Errors[0].Line != 2 || res.Errors[0].Field != "service" {
		t.Errorf("result = %+v", res.Result)
	}
	if len(c.b.Changes) != 2 || c.b.Changes[1].Service != "web" {
		t.Errorf("imported %+v", c.b.Changes)
	}
}
