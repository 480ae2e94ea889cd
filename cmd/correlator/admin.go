package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/correlator/correlator/internal/collectors/fileimport"
	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	print := fs.Bool("print", false, "print the DDL instead of running it")
	database := fs.String("database", "correlator", "database name used in the printed DDL")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *print {
		for _, q := range store.MigrationStatements(*database, sf.cluster) {
			fmt.Fprintf(stdout, "%s;\n\n", q)
		}
		return nil
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, cliLogger(stderr, cfg), nil)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stdout, "schema is at version %d\n", store.SchemaVersion())
	return nil
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	out, err := cfg.Redacted()
	if err != nil {
		return err
	}
	stdout.Write(out)
	return nil
}

func cmdImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: correlator import [flags] FILE|DIR ...\n\nLoads NDJSON files; the kind comes from the file name (changes.ndjson, errors-1.ndjson.gz) or --kind.")
		fs.PrintDefaults()
	}
	var sf storeFlags
	sf.register(fs)
	kindFlag := fs.String("kind", "", "kind of every file: changes, errors, logs, metrics or services")
	quiet := fs.Bool("quiet", false, "no progress output")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		fs.Usage()
		return exitError{2}
	}
	var kind event.Kind
	if *kindFlag != "" {
		var ok bool
		if kind, ok = event.ParseKind(*kindFlag); !ok {
			return fmt.Errorf("flag --kind: unknown kind %q (want changes, errors, logs, metrics or services)", *kindFlag)
		}
	}
	files, err := fileimport.Expand(paths, kind)
	if err != nil {
		return err
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, cliLogger(stderr, cfg), nil)
	if err != nil {
		return err
	}
	defer st.Close()
	results, err := importFiles(ctx, st, cfg, files, stderr, *quiet)
	printImportResults(stdout, results)
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Rejected > 0 {
			return exitError{1}
		}
	}
	return nil
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments (correlator import DIR --data-dir D), which
// flag.Parse alone would take for file names. Everything after "--" is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// importFiles loads files through one batch writer and flushes it, so that
// everything reported as accepted is in the store on return.
func importFiles(ctx context.Context, st *store.Store, cfg config.Config, files []fileimport.File, stderr io.Writer, quiet bool) ([]fileimport.Result, error) {
	w := store.NewBatchWriter(st, store.WriterOptions{MaxRows: cfg.Ingest.BatchRows, Interval: time.Duration(cfg.Ingest.FlushInterval)})
	var results []fileimport.Result
	var firstErr error
	// On a terminal one line is redrawn twice a second; in a log (CI, a
	// pipe) a plain line is written every 5 seconds instead.
	tty := isTerminal(stderr)
	interval, lineEnd, lineStart := 5*time.Second, "\n", ""
	if tty {
		interval, lineEnd, lineStart = 500*time.Millisecond, "   ", "\r\033[K"
	}
	for _, f := range files {
		var progress func(fileimport.Progress)
		if !quiet {
			progress = func(p fileimport.Progress) {
				pct := 100.0
				if p.File.Size > 0 {
					pct = 100 * float64(p.BytesRead) / float64(p.File.Size)
				}
				fmt.Fprintf(stderr, "%s%s: %5.1f%% of %s, %d records, %.0f records/s%s", lineStart, p.File.Path, pct, humanBytes(p.File.Size), p.Records, float64(p.Records)/p.Elapsed.Seconds(), lineEnd)
			}
		}
		r, err := fileimport.Import(ctx, f, w, interval, progress)
		if progress != nil && tty {
			fmt.Fprint(stderr, "\r\033[K")
		}
		results = append(results, r)
		for _, le := range r.Errors {
			fmt.Fprintf(stderr, "%s: %s\n", f.Path, le.Error())
		}
		if r.Rejected > len(r.Errors) {
			fmt.Fprintf(stderr, "%s: and %d more rejected lines\n", f.Path, r.Rejected-len(r.Errors))
		}
		if err != nil {
			firstErr = err
			break
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := w.Close(cctx); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("write to store: %w", err)
	}
	return results, firstErr
}

func printImportResults(w io.Writer, results []fileimport.Result) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintf(w, "%-40s %-9s %10s %9s %8s\n", "FILE", "KIND", "ACCEPTED", "REJECTED", "SECONDS")
	for _, r := range results {
		fmt.Fprintf(w, "%-40s %-9s %10d %9d %8.1f\n", truncate(r.Path, 40), r.Kind, r.Accepted, r.Rejected, r.Elapsed.Seconds())
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
