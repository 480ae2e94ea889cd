package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/collectors/fileimport"
	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/scenario"
)

// cmdDemo builds a synthetic production with one injected incident in a
// fresh embedded store, loads it through the import path, and asks "what
// changed?" the way an on-call engineer would.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	seed := fs.Uint64("seed", 1, "scenario seed")
	family := fs.String("family", string(scenario.BadDeploy), "incident family: "+familyNames())
	days := fs.Int("days", scenario.DefaultDays, "days of history")
	serveFlag := fs.Bool("serve", false, "keep the API up on the demo store afterwards")
	listen := fs.String("listen", "127.0.0.1:8080", "address for --serve")
	asJSON := fs.Bool("json", false, `print {"expected_cause", "whatchanged", "impact", "incident"} as JSON`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fam, ok := scenario.ParseFamily(*family)
	if !ok {
		return fmt.Errorf("flag --family: unknown family %q", *family)
	}
	if sf.dsn != "" {
		return fmt.Errorf("the demo runs on a fresh embedded store; drop --clickhouse")
	}
	if sf.dataDir == "" {
		dir, err := os.MkdirTemp("", "correlator-demo-*")
		if err != nil {
			return err
		}
		sf.dataDir = dir
	} else if entries, err := os.ReadDir(sf.dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("flag --data-dir: %s is not empty; the demo needs a fresh directory", sf.dataDir)
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	log := cliLogger(stderr, cfg)
	progress := func(format string, a ...any) {
		fmt.Fprintf(stderr, format+"\n", a...)
	}

	start := time.Now()
	sc, err := scenario.Generate(scenario.Options{Seed: *seed, Days: *days, Family: fam})
	if err != nil {
		return err
	}
	b := &sc.Batch
	progress("generated %d services, %d changes, %d errors, %d logs, %d metric points over %d days in %.1fs",
		len(b.Services), len(b.Changes), len(b.Errors), len(b.Logs), len(b.Metrics), sc.Options.Days, time.Since(start).Seconds())
	input := filepath.Join(cfg.DataDir, "demo-input")
	if err := sc.WriteNDJSON(input); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	files, err := fileimport.Expand([]string{input}, "")
	if err != nil {
		st.Close()
		return err
	}
	start = time.Now()
	results, err := importFiles(ctx, st, cfg, files, stderr, false)
	if err != nil {
		st.Close()
		return err
	}
	total := 0
	for _, r := range results {
		total += r.Accepted
		if r.Rejected > 0 {
			st.Close()
			return fmt.Errorf("demo data rejected: %s: %v", r.Path, r.Errors[0].Error())
		}
	}
	progress("imported %d records into %s in %.1fs", total, cfg.DataDir, time.Since(start).Seconds())

	q := correlate.Query{Service: sc.Service, At: sc.Detected, Lookback: 2 * time.Hour}
	start = time.Now()
	ans, err := correlate.New(st, correlate.Options{}).WhatChanged(ctx, q)
	if err != nil {
		st.Close()
		return err
	}
	progress("answered in %d ms", time.Since(start).Milliseconds())
	// The incident's life: open, snapshots, a note, resolve with the cause.
	inc, err := demoIncident(ctx, st, cfg, sc, log)
	if err != nil {
		st.Close()
		return fmt.Errorf("demo incident: %w", err)
	}
	// Who was hurt, from the onset to the alert.
	iq := impact.Query{Services: []string{sc.Service}, From: sc.Onset, To: sc.Detected}
	start = time.Now()
	rep, err := impact.New(st, cfg.Impact).Impact(ctx, iq)
	st.Close()
	if err != nil {
		return err
	}
	progress("impact estimated in %d ms", time.Since(start).Milliseconds())
	if *asJSON {
		if err := writeJSON(stdout, map[string]any{"expected_cause": sc.ExpectedCause, "whatchanged": ans, "impact": rep, "incident": inc}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "Scenario (seed %d): %s\n", *seed, sc.Description)
		fmt.Fprintf(stdout, "An alert fired on %s at %s. Asking: correlator whatchanged --service %s --at %s --data-dir %s\n\n",
			sc.Service, sc.Detected.Format(time.RFC3339), sc.Service, sc.Detected.Format(time.RFC3339), cfg.DataDir)
		printAnswer(stdout, ans, sc.ExpectedCause)
		fmt.Fprintln(stdout)
		switch rank := ans.RankOf(sc.ExpectedCause); {
		case sc.ExpectedCause == "" || rank == 0:
		case rank == 1:
			fmt.Fprintln(stdout, "The injected cause is ranked first.")
		default:
			fmt.Fprintf(stdout, "The injected cause is ranked #%d.\n", rank)
		}
		fmt.Fprintf(stdout, "\nWho was hurt? Asking: correlator impact --service %s --from %s --to %s --data-dir %s\n\n",
			sc.Service, sc.Onset.Format(time.RFC3339), sc.Detected.Format(time.RFC3339), cfg.DataDir)
		printImpact(stdout, rep)
		fmt.Fprintf(stdout, "\nThe support team's export: correlator impact --service %s --from %s --to %s --customers --format csv --data-dir %s\n",
			sc.Service, sc.Onset.Format(time.RFC3339), sc.Detected.Format(time.RFC3339), cfg.DataDir)
		printDemoIncident(stdout, inc, cfg.DataDir)
	}
	if !*serveFlag {
		return nil
	}
	cfg.Listen = *listen
	return serve(ctx, cfg, slog.New(slog.NewTextHandler(stderr, nil)), nil)
}

func familyNames() string {
	names := make([]string, len(scenario.Families))
	for i, f := range scenario.Families {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}
