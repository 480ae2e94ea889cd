package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/incident"
)

// cmdAccuracy reports how the engine's rankings did on the team's own
// resolved incidents with a confirmed cause.
func cmdAccuracy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("accuracy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	sinceFlag := fs.String("since", "", "only incidents with a state written since: a duration back (90d, 720h) or a time (RFC 3339, Unix ms) (default all)")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var since time.Time
	if *sinceFlag != "" {
		var err error
		if since, err = parseSince(*sinceFlag, time.Now()); err != nil {
			return fmt.Errorf("flag --since: %w", err)
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
	rep, err := incident.Accuracy(ctx, st, since)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	printAccuracy(stdout, rep)
	return nil
}

// parseSince reads how far back to look: a duration (90d, 720h, also
// written -90d) or a point in time.
func parseSince(s string, now time.Time) (time.Time, error) {
	d := strings.TrimPrefix(strings.TrimSpace(s), "-")
	if dur, err := correlate.ParseDuration(d); err == nil && dur > 0 {
		return now.Add(-dur).UTC(), nil
	}
	t, err := correlate.ParseTime(s, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot parse %q: want a duration back such as 90d or 720h, or a time (RFC 3339, Unix ms)", s)
	}
	return t, nil
}

// printAccuracy prints the tallies, then each incident, for a person.
func printAccuracy(w io.Writer, r *incident.AccuracyReport) {
	scope := "all time"
	if !r.Since.IsZero() {
		scope = "since " + r.Since.Format("2006-01-02 15:04 UTC")
	}
	fmt.Fprintf(w, "How the ranking did on %d resolved incidents with a confirmed cause (%s)\n", len(r.Incidents), scope)
	if len(r.Incidents) == 0 {
		fmt.Fprintln(w, "\nNo resolved incident has a confirmed cause yet: resolve with --cause CHANGE_ID or --cause none.")
		return
	}
	fmt.Fprintln(w, "At open: the first ranking, what was known early. At resolve: the ranking when it was resolved.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tAT OPEN\tAT RESOLVE")
	row := func(name string, f func(t incident.Tally) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, f(r.AtOpen), f(r.AtResolve))
	}
	row("caused by a change", func(t incident.Tally) string { return fmt.Sprint(t.Changes) })
	row("  ranked first (top-1)", func(t incident.Tally) string { return ratio(t.Top1, t.Changes) })
	row("  in the first three (top-3)", func(t incident.Tally) string { return ratio(t.Top3, t.Changes) })
	row("  abstained wrongly", func(t incident.Tally) string { return ratio(t.WrongAbstain, t.Changes) })
	row("caused by no change", func(t incident.Tally) string { return fmt.Sprint(t.None) })
	row("  abstained (right)", func(t incident.Tally) string { return ratio(t.Abstained, t.None) })
	row("right to blame or abstain", func(t incident.Tally) string { return ratio(t.AbstainCorrect, t.Judged) })
	row("no ranking stored", func(t incident.Tally) string { return fmt.Sprint(t.Unjudged) })
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INCIDENT\tRESOLVED (UTC)\tCAUSE\tAT OPEN\tAT RESOLVE\tTITLE")
	for _, ia := range r.Incidents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ia.ID, ia.ResolvedAt.Format(tableTime), ia.Cause,
			judgement(ia.AtOpen, ia.Cause), judgement(ia.AtResolve, ia.Cause), truncate(ia.Title, 50))
	}
	tw.Flush()
}

// ratio is "n/of (p%)", or "-" when of is 0.
func ratio(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d (%.0f%%)", n, of, 100*float64(n)/float64(of))
}

// judgement says in a few words how one ranking did.
func judgement(j *incident.Judgement, cause string) string {
	switch {
	case j == nil:
		return "no ranking"
	case cause == incident.CauseNone && j.Abstained:
		return "abstained ✓"
	case cause == incident.CauseNone:
		return "blamed " + j.Top + " ✗"
	}
	s := "not ranked"
	if j.Rank > 0 {
		s = fmt.Sprintf("#%d", j.Rank)
	}
	if j.Abstained {
		s += ", abstained"
	}
	if j.Correct {
		s += " ✓"
	} else {
		s += " ✗"
	}
	return s
}
