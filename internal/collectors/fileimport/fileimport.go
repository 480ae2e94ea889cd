// Package fileimport loads NDJSON (or JSON array) files of correlator's
// ingest format: `correlator import FILE|DIR ...`. The kind of a file comes
// from its name (changes.ndjson, errors-2026-11.ndjson.gz) unless given.
package fileimport

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/ingest"
)

// Writer receives decoded records; *store.BatchWriter implements it.
type Writer interface {
	Add(ctx context.Context, b *event.Batch) error
}

// File is one file to import.
type File struct {
	Path string
	Kind event.Kind
	Size int64
}

// Result reports one imported file.
type Result struct {
	File
	ingest.Result
	Elapsed time.Duration
}

// Progress is reported while a file is read.
type Progress struct {
	File      File
	BytesRead int64
	Records   int
	Elapsed   time.Duration
}

// KindOf derives the kind from a file name: the part of the base name
// before the first '.', '-' or '_' (errors.ndjson, errors-2026.ndjson).
func KindOf(path string) (event.Kind, bool) {
	base := filepath.Base(path)
	if i := strings.IndexAny(base, ".-_"); i >= 0 {
		base = base[:i]
	}
	return event.ParseKind(base)
}

// Expand turns the arguments into files: a directory contributes its
// *.ndjson, *.json and *.ndjson.gz files. Every file must have a kind,
// from its name or from kind.
func Expand(args []string, kind event.Kind) ([]File, error) {
	var paths []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("cannot import %s: %w", a, err)
		}
		if !st.IsDir() {
			paths = append(paths, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, fmt.Errorf("cannot import %s: %w", a, err)
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".ndjson") || strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".ndjson.gz")) {
				paths = append(paths, filepath.Join(a, n))
			}
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no files to import in %s", strings.Join(args, " "))
	}
	var files []File
	for _, p := range paths {
		k := kind
		if k == "" {
			var ok bool
			if k, ok = KindOf(p); !ok {
				return nil, fmt.Errorf("cannot tell the kind of %s from its name: name it changes.ndjson, errors.ndjson, logs.ndjson, metrics.ndjson or services.ndjson, or pass --kind", p)
			}
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("cannot import %s: %w", p, err)
		}
		files = append(files, File{Path: p, Kind: k, Size: st.Size()})
	}
	// Topology and changes first: they give meaning to what follows.
	order := map[event.Kind]int{event.KindServices: 0, event.KindChanges: 1, event.KindMetrics: 2, event.KindErrors: 3, event.KindLogs: 4}
	sort.SliceStable(files, func(i, j int) bool { return order[files[i].Kind] < order[files[j].Kind] })
	return files, nil
}

// countingReader counts bytes read, for progress.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Import reads one file into w, calling progress about every interval.
func Import(ctx context.Context, f File, w Writer, interval time.Duration, progress func(Progress)) (Result, error) {
	start := time.Now()
	fh, err := os.Open(f.Path)
	if err != nil {
		return Result{File: f}, fmt.Errorf("cannot import %s: %w", f.Path, err)
	}
	defer fh.Close()
	cr := &countingReader{r: fh}
	var r io.Reader = cr
	if strings.HasSuffix(f.Path, ".gz") {
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return Result{File: f}, fmt.Errorf("cannot import %s: %w", f.Path, err)
		}
		defer zr.Close()
		r = zr
	}
	var records atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if progress == nil {
			return
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				progress(Progress{File: f, BytesRead: cr.n.Load(), Records: int(records.Load()), Elapsed: time.Since(start)})
			}
		}
	}()
	res, err := ingest.Decode(ctx, f.Kind, r, ingest.Options{}, func(b *event.Batch) error {
		records.Add(int64(b.Len()))
		return w.Add(ctx, b)
	})
	close(stop)
	<-done
	out := Result{File: f, Result: res, Elapsed: time.Since(start)}
	if err != nil {
		return out, fmt.Errorf("import %s: %w", f.Path, err)
	}
	return out, nil
}
