package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/incident"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/store"
)

const incidentUsage = `usage: correlator incident SUBCOMMAND [flags]

  open     --service S [--service S2] --title T [--at T] [--severity SEV]
  update   ID [--severity SEV] [--service S ...] [--title T] [--note "rolled back api to v41"] [--cause CHANGE_ID|none]
  resolve  ID [--at T] [--cause CHANGE_ID|none] [--note N]
  list     [--open] [--since T] [--limit N]
  show     ID

Every subcommand takes --json and the store flags (--data-dir, --clickhouse,
--config); 'correlator incident open -h' lists them.
`

// cmdIncident runs the incident lifecycle against the store directly, as
// whatchanged and impact do: snapshots are taken in this process.
func cmdIncident(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, incidentUsage)
		return exitError{2}
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("incident "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	var services stringList
	var at, title, severity, note, cause *string
	var open *bool
	var since *string
	var limit *int
	wantID := true
	switch sub {
	case "open":
		wantID = false
		fs.Var(&services, "service", "a symptomatic service (repeat, or comma-separate, for more; the first is asked about first)")
		at = fs.String("at", "", "onset, when the trouble began: RFC 3339, Unix ms, now or -30m (default now)")
		title = fs.String("title", "", "what is wrong (required)")
		severity = fs.String("severity", "", "severity, such as P1, sev2 or page")
	case "update":
		fs.Var(&services, "service", "replace the services (repeat, or comma-separate)")
		title = fs.String("title", "", "a new title")
		severity = fs.String("severity", "", "a new severity")
		note = fs.String("note", "", `an action taken, such as "rolled back api to v41"`)
		cause = fs.String("cause", "", "the confirmed cause: a change id, or none")
	case "resolve":
		at = fs.String("at", "", "when it ended (default now)")
		cause = fs.String("cause", "", "the confirmed cause: a change id (from the ranking), or none")
		note = fs.String("note", "", "how it ended")
	case "list":
		wantID = false
		open = fs.Bool("open", false, "only open incidents")
		since = fs.String("since", "", "only incidents with a state written since: RFC 3339, Unix ms or -24h")
		limit = fs.Int("limit", 100, "at most this many, 1 to 1000")
	case "show":
	default:
		fmt.Fprintf(stderr, "correlator incident: unknown subcommand %q\n\n%s", sub, incidentUsage)
		return exitError{2}
	}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	var id string
	switch {
	case wantID && len(pos) == 0:
		return fmt.Errorf("give the incident id: correlator incident %s ID", sub)
	case wantID && len(pos) > 1, !wantID && len(pos) > 0:
		return fmt.Errorf("unexpected argument %q (flags start with -; see correlator incident %s -h)", pos[len(pos)-1], sub)
	case wantID:
		id = pos[0]
	}
	now := time.Now()
	parseAt := func() (time.Time, error) {
		if at == nil || *at == "" {
			return time.Time{}, nil
		}
		t, err := correlate.ParseTime(*at, now)
		if err != nil {
			return time.Time{}, fmt.Errorf("flag --at: %w", err)
		}
		return t, nil
	}
	onset, err := parseAt()
	if err != nil {
		return err
	}
	var filter incident.ListFilter
	if sub == "list" {
		filter.Limit = *limit
		if *open {
			filter.Status = incident.StatusOpen
		}
		if *since != "" {
			if filter.Since, err = correlate.ParseTime(*since, now); err != nil {
				return fmt.Errorf("flag --since: %w", err)
			}
		}
	}

	cfg, err := sf.load()
	if err != nil {
		return err
	}
	log := cliLogger(stderr, cfg)
	st, err := openStore(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	// The tracker's own news (opened, resolved) is what stdout shows; only
	// its warnings (an incomplete snapshot) go to stderr.
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: max(slog.LevelWarn, cfg.Log.SlogLevel())}))
	tr, outs, err := newIncidents(st, cfg, quiet, nil, false, incident.Options{Logger: quiet})
	if err != nil {
		return err
	}
	// A change made here reaches Grafana before the command returns; a
	// failure to reach it is a warning (serve's next sync catches up).
	defer func() {
		if err := outs.flush(ctx); err != nil {
			fmt.Fprintln(stderr, "warning:", err)
		}
	}()
	var in store.Incident
	switch sub {
	case "open":
		in, err = tr.Open(ctx, incident.OpenRequest{Services: []string(services), At: onset, Title: *title, Severity: *severity})
	case "update":
		req := incident.UpdateRequest{Title: *title, Severity: *severity, Note: *note, Cause: *cause}
		if services != nil {
			req.Services = []string(services)
		}
		in, err = tr.Update(ctx, id, req)
	case "resolve":
		in, err = tr.Resolve(ctx, id, incident.ResolveRequest{At: onset, Cause: *cause, Note: *note})
	case "list":
		ins, err := tr.List(ctx, filter)
		if err != nil {
			return incidentFlagError(err)
		}
		if *asJSON {
			return writeJSON(stdout, ins)
		}
		printIncidentList(stdout, ins, now)
		return nil
	case "show":
		d, err := tr.Get(ctx, id)
		if err != nil {
			return incidentFlagError(err)
		}
		if *asJSON {
			return writeJSON(stdout, d)
		}
		printIncident(stdout, d)
		return nil
	}
	if err != nil {
		return incidentFlagError(err)
	}
	if *asJSON {
		return writeJSON(stdout, in)
	}
	// For people: the incident as it now stands, with what is known.
	d, err := tr.Get(ctx, in.ID)
	if err != nil {
		return err
	}
	printIncident(stdout, d)
	return nil
}

// newTracker builds the Tracker of a command over the store: the engine,
// the impact analyzer and the snapshot interval from the configuration.
// opt's other fields (Logger, OnResolve) are kept.
func newTracker(st *store.Store, cfg config.Config, opt incident.Options) *incident.Tracker {
	opt.Engine = correlate.New(st, correlate.Options{})
	opt.Analyzer = impact.New(st, cfg.Impact)
	opt.Interval = cfg.Incidents.EffectiveSnapshotInterval()
	return incident.NewTracker(st, opt)
}

// incidentFlagError rewords a request field's error for the command line:
// the field services reads as flag --service.
func incidentFlagError(err error) error {
	var fe *incident.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	switch fe.Field {
	case "services":
		return fmt.Errorf("flag --service: %s", fe.Reason)
	case "":
		return errors.New(strings.ReplaceAll(fe.Reason, "give title, severity, services, note or cause", "give --title, --severity, --service, --note or --cause"))
	case "status":
		return fmt.Errorf("flag --open: %s", fe.Reason)
	}
	return fmt.Errorf("flag --%s: %s", fe.Field, fe.Reason)
}

// stringList is a repeatable flag whose values may also be
// comma-separated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		*l = append(*l, strings.TrimSpace(s))
	}
	return nil
}

const tableTime = "2006-01-02 15:04"

// printIncidentList prints incidents as a table, one a line.
func printIncidentList(w io.Writer, ins []store.Incident, now time.Time) {
	if len(ins) == 0 {
		fmt.Fprintln(w, "No incidents.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tSTARTED (UTC)\tDURATION\tSERVICES\tCAUSE\tTITLE")
	for _, in := range ins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Status, dash(in.Severity), started(in).Format(tableTime),
			duration(in, now), strings.Join(in.Services, ","), dash(in.Attributes[incident.AttrCause]), truncate(in.Title, 60))
	}
	tw.Flush()
}

// printIncident prints one incident for a person: its state, its history
// and what each snapshot knew.
func printIncident(w io.Writer, d *incident.Detail) {
	in := d.Incident
	fmt.Fprintf(w, "Incident %s: %s\n", in.ID, in.Title)
	fmt.Fprintf(w, "  status    %s", in.Status)
	if in.Severity != "" {
		fmt.Fprintf(w, ", severity %s", in.Severity)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  services  %s\n", strings.Join(in.Services, ", "))
	fmt.Fprintf(w, "  started   %s UTC (opened %s)\n", started(in).Format(tableTime+":05"), in.OpenedAt.Format(tableTime+":05"))
	if !in.ResolvedAt.IsZero() {
		fmt.Fprintf(w, "  resolved  %s UTC, after %s\n", in.ResolvedAt.Format(tableTime+":05"), humanMinutes(in.ResolvedAt.Sub(started(in))))
	}
	if c := in.Attributes[incident.AttrCause]; c != "" {
		fmt.Fprintf(w, "  cause     %s\n", c)
	}
	if u := in.Attributes[attrPostmortemURL]; u != "" {
		fmt.Fprintf(w, "  bundle    %s\n", u)
	}
	if d.LiveURL != "" {
		fmt.Fprintf(w, "  live page %s\n", d.LiveURL)
	}

	fmt.Fprintln(w, "\nHistory")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  AT (UTC)\tSTATUS\tSEVERITY\tSERVICES\tNOTE")
	for _, h := range d.History {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", h.UpdatedAt.Format(tableTime+":05"), h.Status, dash(h.Severity), strings.Join(h.Services, ","), truncate(oneLine(h.Note), 70))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nSnapshots: what was known when")
	if len(d.Snapshots) == 0 {
		fmt.Fprintln(w, "  none yet")
		return
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TAKEN (UTC)\tTRIGGER\tVERDICT\tTOP SUSPECTS\tUSERS (INTERVAL)\tSEVERITY\tERROR")
	for _, s := range d.Snapshots {
		var sus []string
		for _, c := range s.Suspects {
			sus = append(sus, fmt.Sprintf("#%d %s %.2f", c.Rank, c.ChangeID, c.Score))
		}
		users, sev := "-", "-"
		if s.Impact != nil {
			users = fmt.Sprintf("%.0f (%.0f–%.0f)", s.Impact.Users, s.Impact.UsersLow, s.Impact.UsersHigh)
			sev = s.Impact.Severity
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.TakenAt.Format(tableTime+":05"), s.Trigger, dash(s.Verdict),
			dash(strings.Join(sus, ", ")), users, sev, truncate(oneLine(s.Error), 60))
	}
	tw.Flush()
	if last := d.Snapshots[len(d.Snapshots)-1]; last.Summary != "" {
		fmt.Fprintf(w, "\nLatest answer: %s\n", last.Summary)
	}
}

// started is when the incident began: its onset, else its opening.
func started(in store.Incident) time.Time {
	if in.Onset.IsZero() || in.OpenedAt.Before(in.Onset) {
		return in.OpenedAt
	}
	return in.Onset
}

// duration is how long the incident lasted, or has lasted so far.
func duration(in store.Incident, now time.Time) string {
	end, suffix := in.ResolvedAt, ""
	if end.IsZero() {
		end, suffix = now, " so far"
	}
	return humanMinutes(end.Sub(started(in))) + suffix
}

// humanMinutes writes a duration to the minute: 45m, 2h05m, 3d4h.
func humanMinutes(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	switch {
	case m < 1:
		return "<1m"
	case m < 60:
		return fmt.Sprintf("%dm", m)
	case m < 24*60:
		return fmt.Sprintf("%dh%02dm", m/60, m%60)
	}
	return fmt.Sprintf("%dd%dh", m/(24*60), m%(24*60)/60)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// demoIncident runs the demo's incident through its life on the
// scenario's clock: declared when the alert fired with the onset known,
// snapshotted on open and five minutes later, a note of the action taken,
// then resolved twenty minutes after the alert with the injected cause
// confirmed ("none" for the families no change caused). It returns the
// incident as `correlator incident show` reads it.
func demoIncident(ctx context.Context, st *store.Store, cfg config.Config, sc *scenario.Scenario, log *slog.Logger) (*incident.Detail, error) {
	clock := sc.Detected
	// The bundle goes next to the demo's store unless configured
	// elsewhere; Grafana is synced when configured.
	if cfg.Postmortem.Dir == "" && cfg.Postmortem.WebhookURL == "" {
		cfg.Postmortem.Dir = filepath.Join(cfg.DataDir, "postmortems")
	}
	tr, outs, err := newIncidents(st, cfg, log, nil, false, incident.Options{Logger: log, Now: func() time.Time { return clock }})
	if err != nil {
		return nil, err
	}
	in, err := tr.Open(ctx, incident.OpenRequest{Services: []string{sc.Service}, At: sc.Onset, Title: "Alert on " + sc.Service})
	if err != nil {
		return nil, err
	}
	clock = clock.Add(5 * time.Minute)
	if _, err := tr.Snapshot(ctx, in.ID, incident.TriggerInterval); err != nil {
		return nil, err
	}
	cause, note := sc.ExpectedCause, "rolled back "+sc.ExpectedCause
	if cause == "" {
		cause, note = incident.CauseNone, "no change to roll back; mitigated by hand"
	}
	clock = clock.Add(5 * time.Minute)
	if _, err := tr.Update(ctx, in.ID, incident.UpdateRequest{Note: note}); err != nil {
		return nil, err
	}
	clock = clock.Add(10 * time.Minute)
	if _, err := tr.Resolve(ctx, in.ID, incident.ResolveRequest{Cause: cause}); err != nil {
		return nil, err
	}
	if err := outs.flush(ctx); err != nil {
		log.Warn("demo incident not shown in Grafana", "err", err)
	}
	return tr.Get(ctx, in.ID)
}

// printDemoIncident shows the demo's incident and how to read it again.
func printDemoIncident(w io.Writer, d *incident.Detail, dataDir string) {
	fmt.Fprintf(w, "\nThe incident's life, declared with correlator incident open --service %s --at %s --title ..., updated and resolved with --cause:\n\n",
		d.Services[0], d.Onset.Format(time.RFC3339))
	printIncident(w, d)
	fmt.Fprintf(w, "\nAgain: correlator incident show %s --data-dir %s; the ranking's record: correlator accuracy --data-dir %s\n", d.ID, dataDir, dataDir)
	if loc := d.Attributes[attrPostmortemURL]; loc != "" {
		fmt.Fprintf(w, "The post-mortem draft, attached on resolve: %s (again: correlator postmortem %s --format html --data-dir %s)\n", loc, d.ID, dataDir)
	}
}
