package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/correlator/correlator/internal/correlate"
)

func cmdWhatChanged(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("whatchanged", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	service := fs.String("service", "", "the symptomatic service (required)")
	at := fs.String("at", "now", "when to ask: RFC 3339, Unix ms, now or -30m")
	lookback := fs.String("lookback", "2h", "how far back to look for changes")
	onset := fs.String("onset", "", "symptom onset if known (default: detected)")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *service == "" {
		return fmt.Errorf("flag --service is required")
	}
	now := time.Now()
	q := correlate.Query{Service: *service}
	var err error
	if q.At, err = correlate.ParseTime(*at, now); err != nil {
		return fmt.Errorf("flag --at: %w", err)
	}
	if q.Lookback, err = correlate.ParseLookback(*lookback); err != nil {
		return fmt.Errorf("flag --lookback: %w", err)
	}
	if *onset != "" {
		if q.Onset, err = correlate.ParseTime(*onset, now); err != nil {
			return fmt.Errorf("flag --onset: %w", err)
		}
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
	ans, err := correlate.New(st, correlate.Options{}).WhatChanged(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, ans)
	}
	printAnswer(stdout, ans, "")
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printAnswer prints the ranked answer for a person. mark, when set, is the
// id of the change to flag as the known cause (the demo's truth).
func printAnswer(w io.Writer, a *correlate.Answer, mark string) {
	fmt.Fprintf(w, "What changed before %s's symptoms?\n", a.Service)
	fmt.Fprintf(w, "  window  %s → %s (UTC)\n", a.Window.From.Format("2006-01-02 15:04"), a.Window.To.Format("2006-01-02 15:04"))
	switch a.OnsetSource {
	case "none":
		fmt.Fprintf(w, "  onset   no error-rate shift found in %s; ranking against the query time\n", a.Service)
	default:
		fmt.Fprintf(w, "  onset   %s (%s)\n", a.Onset.Format("2006-01-02 15:04 MST"), a.OnsetSource)
	}
	fmt.Fprintf(w, "  scope   %s\n", strings.Join(a.Scope, ", "))
	if a.Summary != "" {
		fmt.Fprintf(w, "  answer  %s\n", a.Summary)
	}
	fmt.Fprintln(w)
	if len(a.Candidates) == 0 {
		fmt.Fprintln(w, "No changes in this window and scope.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RANK\tSCORE\tTIME (UTC)\tKIND\tSERVICE\tVERSION\tCHANGE\t")
	for _, c := range a.Candidates {
		ver := c.Change.Version
		if c.Change.PreviousVersion != "" {
			ver = c.Change.PreviousVersion + " → " + ver
		}
		title := c.Change.Title
		if title == "" {
			title = c.Change.ID
		}
		flagged := ""
		if mark != "" && c.Change.ID == mark {
			flagged = "  ◀ injected cause"
		}
		fmt.Fprintf(tw, "%d\t%.2f\t%s\t%s\t%s\t%s\t%s%s\t\n", c.Rank, c.Score, c.Change.Time.Format("01-02 15:04"), c.Change.Kind, c.Change.Service, ver, truncate(title, 48), flagged)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, c := range a.Candidates {
		if c.Rank > 3 {
			break
		}
		fmt.Fprintf(w, "#%d %s %s %s (id %s)\n", c.Rank, c.Change.Kind, c.Change.Service, c.Change.Version, c.Change.ID)
		for _, e := range c.Evidence {
			fmt.Fprintf(w, "   - %s\n", e.Summary)
		}
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
