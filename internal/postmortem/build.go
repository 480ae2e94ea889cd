package postmortem

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/store"
)

// Store is what a bundle is built from; *store.Store implements it. Every
// read must honour store.RecordQueries, since that is how the bundle cites
// the queries behind its figures.
type Store interface {
	IncidentHistory(ctx context.Context, id string) ([]store.Incident, error)
	Snapshots(ctx context.Context, incidentID string) ([]store.Snapshot, error)
	Changes(ctx context.Context, services []string, from, to time.Time) ([]event.Change, error)
	ErrorsPerMinute(ctx context.Context, services []string, from, to time.Time) ([]store.Bucket, error)
	MetricPerMinute(ctx context.Context, name string, services []string, from, to time.Time) ([]store.Bucket, error)
	NewFingerprints(ctx context.Context, services []string, since, from, to time.Time) ([]store.Fingerprint, error)
	ErrorSamples(ctx context.Context, services, fingerprints []string, from, to time.Time) ([]store.ErrorSample, error)
	LogLines(ctx context.Context, service string, from, to time.Time, minSeverity uint8, limit int) ([]store.LogLine, error)
}

// ErrUnknownIncident is returned for an incident id with no record.
var ErrUnknownIncident = errors.New("unknown incident")

// Options tune a Builder. The zero value uses the defaults.
type Options struct {
	// GrafanaURL is Grafana's base URL (https://grafana.example.com); no
	// dashboard links without it.
	GrafanaURL string
	// ServiceDashboard and IncidentDashboard are the dashboards' UIDs;
	// defaults correlator-service and correlator-incident.
	ServiceDashboard, IncidentDashboard string
	// Lookback is how far before the start changes are listed when no
	// snapshot says; default 2h.
	Lookback time.Duration
	// ChartBefore and ChartAfter pad the charts around the incident;
	// defaults 1h and 30m.
	ChartBefore, ChartAfter time.Duration
	// NewErrorLookback is how far back a fingerprint must be absent to
	// count as new; default 7 days, as the engine's.
	NewErrorLookback time.Duration
	// MaxNewErrors and MaxLogLines bound those sections; defaults 5, 20.
	MaxNewErrors, MaxLogLines int
	// LogSeverity is the lowest OpenTelemetry severity of the log lines
	// shown; default 13 (WARN).
	LogSeverity uint8
	// RequestsMetric and LatencyMetric name the metrics charted; defaults
	// "requests" and "latency_p95_ms".
	RequestsMetric, LatencyMetric string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Lookback, 2*time.Hour)
	def(&o.ChartBefore, time.Hour)
	def(&o.ChartAfter, 30*time.Minute)
	def(&o.NewErrorLookback, 7*24*time.Hour)
	if o.ServiceDashboard == "" {
		o.ServiceDashboard = "correlator-service"
	}
	if o.IncidentDashboard == "" {
		o.IncidentDashboard = "correlator-incident"
	}
	if o.MaxNewErrors <= 0 {
		o.MaxNewErrors = 5
	}
	if o.MaxLogLines <= 0 {
		o.MaxLogLines = 20
	}
	if o.LogSeverity == 0 {
		o.LogSeverity = 13
	}
	if o.RequestsMetric == "" {
		o.RequestsMetric = "requests"
	}
	if o.LatencyMetric == "" {
		o.LatencyMetric = "latency_p95_ms"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.GrafanaURL = strings.TrimRight(o.GrafanaURL, "/")
}

// Builder builds bundles from a Store. It is safe for concurrent use.
type Builder struct {
	st  Store
	opt Options
}

// NewBuilder returns a Builder over st.
func NewBuilder(st Store, opt Options) *Builder {
	opt.defaults()
	return &Builder{st: st, opt: opt}
}

// queries numbers the reads behind a bundle, once each.
type queries struct {
	list []Query
	byKV map[string]string
}

// add files the records under purpose and returns their IDs; a read
// already filed (same SQL and parameters) keeps its first ID.
func (q *queries) add(purpose string, recs []store.QueryRecord) []string {
	if q.byKV == nil {
		q.byKV = map[string]string{}
	}
	ids := []string{}
	for _, r := range recs {
		b, _ := json.Marshal(r)
		key := string(b)
		id, ok := q.byKV[key]
		if !ok {
			id = "q" + strconv.Itoa(len(q.list)+1)
			q.byKV[key] = id
			q.list = append(q.list, Query{ID: id, Purpose: purpose, QueryRecord: r})
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// read runs f under a fresh query recorder and files what it read.
func (q *queries) read(ctx context.Context, purpose string, f func(ctx context.Context) error) ([]string, error) {
	rctx, log := store.RecordQueries(ctx)
	err := f(rctx)
	return q.add(purpose, log.Records()), err
}

// Build builds the bundle of incident id. A part that cannot be built is
// left out with a warning; only an unknown incident or a failed read of
// its history is an error.
func (b *Builder) Build(ctx context.Context, id string) (*Bundle, error) {
	var qs queries
	var hist []store.Incident
	histIDs, err := qs.read(ctx, "incident history", func(ctx context.Context) (err error) {
		hist, err = b.st.IncidentHistory(ctx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read incident %s: %w", id, err)
	}
	if len(hist) == 0 {
		return nil, fmt.Errorf("%w %q", ErrUnknownIncident, id)
	}
	now := b.opt.Now().UTC()
	cur := hist[len(hist)-1]
	bd := &Bundle{GeneratedAt: now, Live: cur.Status != "resolved"}
	warn := func(format string, a ...any) { bd.Warnings = append(bd.Warnings, fmt.Sprintf(format, a...)) }

	var snaps []store.Snapshot
	snapIDs, err := qs.read(ctx, "incident snapshots", func(ctx context.Context) (err error) {
		snaps, err = b.st.Snapshots(ctx, id)
		return err
	})
	if err != nil {
		warn("snapshots: %v", err)
	}
	first, last, rep, repAt, repIDs := b.fromSnapshots(snaps, snapIDs, &qs, warn)

	// The incident and its span.
	in := Incident{ID: cur.ID, Title: cur.Title, Status: cur.Status, Severity: cur.Severity, Services: cur.Services,
		OpenedAt: cur.OpenedAt, Cause: cur.Attributes["cause"], Attributes: cur.Attributes, QueryIDs: histIDs}
	in.Start = cur.OpenedAt
	var lastAns *correlate.Answer
	if last != nil {
		lastAns = last.Answer
	}
	if !cur.Onset.IsZero() {
		in.Start = cur.Onset
	}
	// An alert opens an incident when it fires, after the symptoms began:
	// the earliest sign is the start.
	if lastAns != nil && lastAns.OnsetSource == "detected" && lastAns.Onset.Before(in.Start) {
		in.Start = lastAns.Onset.UTC()
	}
	in.End = now
	if !cur.ResolvedAt.IsZero() {
		in.ResolvedAt, in.End = cur.ResolvedAt, cur.ResolvedAt
	}
	if in.End.Before(in.Start) {
		in.End = in.Start
	}
	in.Duration = Duration(in.End.Sub(in.Start))
	if in.Severity == "" && rep != nil {
		in.Severity = rep.Severity
	}
	bd.Incident = in
	bd.Causes = Causes{First: first, Last: last, Confirmed: in.Cause}
	if rep != nil {
		bd.Impact = &Impact{SnapshotAt: repAt, Report: *rep, Duration: in.Duration, Severity: in.Severity, QueryIDs: repIDs}
	}

	// Services in scope: the incident's, and the dependencies the engine
	// searched, since the cause of a symptom is often a dependency's change.
	scope := slices.Clone(in.Services)
	if lastAns != nil {
		for _, s := range lastAns.Scope {
			if !slices.Contains(scope, s) {
				scope = append(scope, s)
			}
		}
	}
	from := in.Start.Add(-b.opt.Lookback)
	if lastAns != nil && !lastAns.Window.From.IsZero() && lastAns.Window.From.Before(from) {
		from = lastAns.Window.From.UTC()
	}
	to := in.End.Add(time.Millisecond) // the resolution itself is in range

	bd.Timeline = timelineFromHistory(hist, histIDs)
	if lastAns != nil && lastAns.OnsetSource == "detected" {
		bd.Timeline = append(bd.Timeline, TimelineEntry{Time: lastAns.Onset.UTC(), Kind: EntryOnset,
			Text: "Symptom onset detected by correlator in " + lastAns.Service, QueryIDs: last.QueryIDs})
	}

	var changes []event.Change
	chIDs, err := qs.read(ctx, "changes in scope", func(ctx context.Context) (err error) {
		if len(scope) > 0 {
			changes, err = b.st.Changes(ctx, scope, from, to)
		}
		return err
	})
	if err != nil {
		warn("changes: %v", err)
	}
	ranks := map[string]int{}
	if lastAns != nil {
		for _, c := range lastAns.Candidates {
			ranks[c.Change.ID] = c.Rank
		}
	}
	for _, c := range changes {
		text := changeText(c)
		if r, ok := ranks[c.ID]; ok {
			text += fmt.Sprintf(" — suspect #%d", r)
		}
		if c.ID == in.Cause {
			text += " — confirmed cause"
		}
		bd.Timeline = append(bd.Timeline, TimelineEntry{Time: c.Time, Kind: EntryChange, Text: text, Ref: c.ID, URL: c.URL, QueryIDs: chIDs})
	}

	b.newErrors(ctx, bd, &qs, in, scope, warn)
	for _, e := range bd.NewErrors {
		bd.Timeline = append(bd.Timeline, TimelineEntry{Time: e.FirstSeen, Kind: EntryNewError,
			Text: fmt.Sprintf("New error in %s: %s: %s (first in release %s)", e.Service, e.Type, truncate(e.Message, 120), orNone(e.Release)),
			Ref:  e.Fingerprint, QueryIDs: e.QueryIDs})
	}
	slices.SortStableFunc(bd.Timeline, func(a, b TimelineEntry) int { return a.Time.Compare(b.Time) })

	for _, svc := range in.Services {
		var lines []store.LogLine
		ids, err := qs.read(ctx, "log lines of "+svc, func(ctx context.Context) (err error) {
			lines, err = b.st.LogLines(ctx, svc, in.Start, to, b.opt.LogSeverity, b.opt.MaxLogLines)
			return err
		})
		if err != nil {
			warn("log lines of %s: %v", svc, err)
			continue
		}
		bd.Logs = append(bd.Logs, LogSample{Service: svc, Lines: lines, QueryIDs: ids})
	}

	b.charts(ctx, bd, &qs, changes, warn)
	bd.Links = b.links(in, bd.Charts)
	bd.Summary = summary(bd)
	bd.Team = Team{ContributingFactors: []string{}, WentWell: []string{}, ActionItems: []ActionItem{}}
	bd.Queries = qs.list
	return bd, nil
}

// fromSnapshots decodes the first and last snapshots' causes and the latest
// impact report, citing the queries each snapshot recorded.
func (b *Builder) fromSnapshots(snaps []store.Snapshot, readIDs []string, qs *queries, warn func(string, ...any)) (first, last *Known, rep *impact.Report, repAt time.Time, repIDs []string) {
	known := func(sn store.Snapshot) *Known {
		k := &Known{TakenAt: sn.TakenAt, Trigger: sn.Trigger, Error: sn.Error, QueryIDs: slices.Clone(readIDs)}
		recs := snapshotQueries(sn, warn)
		k.QueryIDs = append(k.QueryIDs, qs.add("causes (snapshot "+sn.TakenAt.Format(time.RFC3339)+")", recs["causes"])...)
		if sn.Causes != "" {
			var a correlate.Answer
			if err := json.Unmarshal([]byte(sn.Causes), &a); err != nil {
				warn("snapshot %s: causes: %v", sn.TakenAt.Format(time.RFC3339), err)
			} else {
				k.Answer = &a
			}
		}
		return k
	}
	var withCauses []store.Snapshot
	for _, sn := range snaps {
		if sn.Causes != "" {
			withCauses = append(withCauses, sn)
		}
	}
	if len(withCauses) > 0 {
		first = known(withCauses[0])
		if len(withCauses) > 1 {
			last = known(withCauses[len(withCauses)-1])
		} else {
			last = first
		}
	} else {
		warn("no snapshot with ranked causes yet")
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		sn := snaps[i]
		if sn.Impact == "" {
			continue
		}
		var r impact.Report
		if err := json.Unmarshal([]byte(sn.Impact), &r); err != nil {
			warn("snapshot %s: impact: %v", sn.TakenAt.Format(time.RFC3339), err)
			continue
		}
		recs := snapshotQueries(sn, warn)
		repIDs = append(slices.Clone(readIDs), qs.add("impact (snapshot "+sn.TakenAt.Format(time.RFC3339)+")", recs["impact"])...)
		return first, last, &r, sn.TakenAt, repIDs
	}
	warn("no snapshot with an impact report yet")
	return first, last, nil, time.Time{}, nil
}

// snapshotQueries decodes a snapshot's {"causes": [...], "impact": [...]}.
func snapshotQueries(sn store.Snapshot, warn func(string, ...any)) map[string][]store.QueryRecord {
	out := map[string][]store.QueryRecord{}
	if sn.Queries == "" {
		return out
	}
	if err := json.Unmarshal([]byte(sn.Queries), &out); err != nil {
		warn("snapshot %s: queries: %v", sn.TakenAt.Format(time.RFC3339), err)
	}
	return out
}

// timelineFromHistory turns the incident's states into timeline entries:
// the opening (an alert's, when Alertmanager opened it), what each later
// state changed, the notes of actions taken, and the resolution.
func timelineFromHistory(hist []store.Incident, ids []string) []TimelineEntry {
	var out []TimelineEntry
	add := func(t time.Time, kind, text string) {
		out = append(out, TimelineEntry{Time: t, Kind: kind, Text: text, QueryIDs: ids})
	}
	first := hist[0]
	if key := first.Attributes["alertmanager.group_key"]; key != "" {
		name := cmp.Or(first.Attributes["alertname"], first.Title)
		text := fmt.Sprintf("Alert %s fired on %s", name, strings.Join(first.Services, ", "))
		if r := first.Attributes["alertmanager.receiver"]; r != "" {
			text += " (Alertmanager receiver " + r + ")"
		}
		add(first.OpenedAt, EntryAlert, text)
	}
	text := "Incident opened: " + first.Title
	if first.Severity != "" {
		text += " (severity " + first.Severity + ")"
	}
	// An alert-opened incident opens when its alert starts; a declared one
	// when it was written.
	openedAt := first.OpenedAt
	if first.Attributes["alertmanager.group_key"] == "" && !first.UpdatedAt.IsZero() {
		openedAt = first.UpdatedAt
	}
	add(openedAt, EntryOpened, text)
	if !first.Onset.IsZero() && !first.Onset.Equal(first.OpenedAt) {
		add(first.Onset, EntryOnset, "Symptom onset (as recorded on the incident)")
	}
	if first.Note != "" {
		add(openedAt, EntryAction, first.Note)
	}
	for i := 1; i < len(hist); i++ {
		prev, st := hist[i-1], hist[i]
		if attributesOnly(prev, st) {
			// A fact recorded about the incident (where its post-mortem
			// went: SetAttributes), not something done about it.
			continue
		}
		var added []string
		for _, s := range st.Services {
			if !slices.Contains(prev.Services, s) {
				added = append(added, s)
			}
		}
		if len(added) > 0 {
			kind, verb := EntryUpdate, "Scope widened to "
			if st.Attributes["alertmanager.group_key"] != "" {
				kind, verb = EntryAlert, "Alert group joined by "
			}
			add(st.UpdatedAt, kind, verb+strings.Join(added, ", "))
		}
		if st.Severity != prev.Severity && st.Severity != "" {
			add(st.UpdatedAt, EntryUpdate, "Severity set to "+st.Severity)
		}
		if !st.Onset.Equal(prev.Onset) && !st.Onset.IsZero() {
			add(st.Onset, EntryOnset, "Symptom onset (as recorded on the incident)")
		}
		if st.Note != "" && st.Note != prev.Note {
			add(st.UpdatedAt, EntryAction, st.Note)
		}
		if st.Status == "resolved" && prev.Status != "resolved" {
			text := "Resolved"
			switch c := st.Attributes["cause"]; c {
			case "":
			case "none":
				text += "; no change was the cause"
			default:
				text += "; confirmed cause " + c
			}
			add(cmp.Or(st.ResolvedAt, st.UpdatedAt), EntryResolution, text)
		}
	}
	return out
}

// attributesOnly tells whether st differs from prev only by its
// attributes (other than the confirmed cause), its note and its time: a
// state SetAttributes appends, whose note says what was recorded rather
// than an action taken.
func attributesOnly(prev, st store.Incident) bool {
	if st.Attributes["cause"] != prev.Attributes["cause"] || maps.Equal(st.Attributes, prev.Attributes) {
		return false
	}
	return st.Title == prev.Title && st.Status == prev.Status && st.Severity == prev.Severity &&
		slices.Equal(st.Services, prev.Services) && st.OpenedAt.Equal(prev.OpenedAt) && st.Onset.Equal(prev.Onset) &&
		st.ResolvedAt.Equal(prev.ResolvedAt)
}

// changeText describes a change for the timeline.
func changeText(c event.Change) string {
	var b strings.Builder
	b.WriteString(cases(string(c.Kind)) + " of " + c.Service)
	if c.Version != "" {
		b.WriteString(" " + c.Version)
		if c.PreviousVersion != "" {
			b.WriteString(" (from " + c.PreviousVersion + ")")
		}
	}
	if c.Author != "" {
		b.WriteString(" by " + c.Author)
	}
	if c.Title != "" {
		b.WriteString(": " + truncate(c.Title, 120))
	}
	return b.String()
}

// newErrors fills the errors of the services in scope first seen around
// the incident, with their frames when the store has any.
func (b *Builder) newErrors(ctx context.Context, bd *Bundle, qs *queries, in Incident, scope []string, warn func(string, ...any)) {
	to := in.End.Add(time.Millisecond)
	// A detected onset is a whole minute, after the first events of the
	// new error that drove it; and an error that appeared with the top
	// suspect, before the symptoms showed, is part of the story.
	from := in.Start.Add(-15 * time.Minute)
	if k := bd.Causes.Last; k != nil && k.Answer != nil && len(k.Answer.Candidates) > 0 {
		if t := k.Answer.Candidates[0].Change.Time; t.Before(from) && in.Start.Sub(t) <= b.opt.Lookback {
			from = t
		}
	}
	var fps []store.Fingerprint
	ids, err := qs.read(ctx, "new errors", func(ctx context.Context) (err error) {
		fps, err = b.st.NewFingerprints(ctx, scope, from.Add(-b.opt.NewErrorLookback), from, to)
		return err
	})
	if err != nil {
		warn("new errors: %v", err)
		return
	}
	// The most frequent first: the ones that hurt.
	slices.SortStableFunc(fps, func(a, b store.Fingerprint) int { return cmp.Compare(b.Count, a.Count) })
	fps = fps[:min(len(fps), b.opt.MaxNewErrors)]
	bd.NewErrors = []NewError{}
	var names []string
	for _, f := range fps {
		bd.NewErrors = append(bd.NewErrors, NewError{Service: f.Service, Fingerprint: f.Fingerprint, Type: f.Type, Message: f.Message,
			Release: f.Release, FirstSeen: f.FirstSeen, LastSeen: f.LastSeen, Count: f.Count, QueryIDs: ids})
		names = append(names, f.Fingerprint)
	}
	if len(names) == 0 {
		return
	}
	var samples []store.ErrorSample
	sIDs, err := qs.read(ctx, "stack frames of new errors", func(ctx context.Context) (err error) {
		samples, err = b.st.ErrorSamples(ctx, scope, names, from, to)
		return err
	})
	if err != nil {
		warn("stack frames: %v", err)
		return
	}
	framed := 0
	for i := range bd.NewErrors {
		e := &bd.NewErrors[i]
		for _, s := range samples {
			if s.Service == e.Service && s.Fingerprint == e.Fingerprint {
				e.Frames = s.Frames
				e.QueryIDs = append(slices.Clone(e.QueryIDs), sIDs...)
				framed++
			}
		}
	}
	if framed < len(bd.NewErrors) {
		bd.NewErrorsNote = "Stack frames are kept only for errors from Sentry (attribute sentry.frames); the others show type, message and release."
	}
}

// charts fills the error-rate and latency charts around the incident, the
// changes drawn as markers.
func (b *Builder) charts(ctx context.Context, bd *Bundle, qs *queries, changes []event.Change, warn func(string, ...any)) {
	in := bd.Incident
	from := in.Start.Add(-b.opt.ChartBefore).Truncate(time.Minute)
	// Reach back to the top suspect, so that its marker is on the chart.
	if k := bd.Causes.Last; k != nil && k.Answer != nil && len(k.Answer.Candidates) > 0 {
		if t := k.Answer.Candidates[0].Change.Time.Add(-15 * time.Minute).Truncate(time.Minute); t.Before(from) && in.Start.Sub(t) < 24*time.Hour {
			from = t
		}
	}
	to := in.End.Add(b.opt.ChartAfter)
	if to.After(bd.GeneratedAt) {
		to = bd.GeneratedAt
	}
	to = to.Truncate(time.Minute).Add(time.Minute)
	var markers []Marker
	for _, c := range changes {
		if !c.Time.Before(from) && c.Time.Before(to) {
			markers = append(markers, Marker{Time: c.Time, Label: changeLabel(c)})
		}
	}
	services := in.Services
	var errs, reqs, lat []store.Bucket
	ids, err := qs.read(ctx, "error rate chart", func(ctx context.Context) (err error) {
		if errs, err = b.st.ErrorsPerMinute(ctx, services, from, to); err != nil {
			return err
		}
		reqs, err = b.st.MetricPerMinute(ctx, b.opt.RequestsMetric, services, from, to)
		return err
	})
	if err != nil {
		warn("error rate chart: %v", err)
	} else {
		c := Chart{ID: "error-rate", Title: "Error rate", Unit: "% of requests", From: from, To: to, Markers: markers,
			Shade: [2]time.Time{in.Start, in.End}, QueryIDs: ids}
		c.Series = errorRate(services, errs, reqs)
		if len(reqs) == 0 {
			c.Unit = "errors per minute"
		}
		bd.Charts = append(bd.Charts, c)
	}
	ids, err = qs.read(ctx, "latency chart", func(ctx context.Context) (err error) {
		lat, err = b.st.MetricPerMinute(ctx, b.opt.LatencyMetric, services, from, to)
		return err
	})
	if err != nil {
		warn("latency chart: %v", err)
		return
	}
	c := Chart{ID: "latency", Title: "Latency (" + b.opt.LatencyMetric + ", mean over series)", Unit: "ms", From: from, To: to,
		Markers: markers, Shade: [2]time.Time{in.Start, in.End}, QueryIDs: ids}
	for _, svc := range services {
		s := Series{Name: svc, Points: []Point{}}
		for _, bk := range lat {
			if bk.Service == svc && bk.Count > 0 {
				s.Points = append(s.Points, Point{T: bk.Minute, V: bk.Estimate / float64(bk.Count)})
			}
		}
		c.Series = append(c.Series, s)
	}
	bd.Charts = append(bd.Charts, c)
}

// errorRate is each service's sampling-corrected errors per minute over its
// requests that minute, in percent; errors per minute when there is no
// request metric at all.
func errorRate(services []string, errs, reqs []store.Bucket) []Series {
	type key struct {
		svc string
		t   time.Time
	}
	req := map[key]float64{}
	for _, r := range reqs {
		req[key{r.Service, r.Minute}] = r.Estimate
	}
	var out []Series
	for _, svc := range services {
		e := map[time.Time]float64{}
		minutes := map[time.Time]bool{}
		for _, b := range errs {
			if b.Service == svc {
				e[b.Minute] = b.Estimate
				minutes[b.Minute] = true
			}
		}
		for k := range req {
			if k.svc == svc {
				minutes[k.t] = true
			}
		}
		s := Series{Name: svc, Points: []Point{}}
		for _, t := range slices.SortedFunc(maps.Keys(minutes), func(a, b time.Time) int { return a.Compare(b) }) {
			switch r, ok := req[key{svc, t}]; {
			case len(reqs) == 0:
				s.Points = append(s.Points, Point{T: t, V: e[t]})
			case ok && r > 0:
				s.Points = append(s.Points, Point{T: t, V: 100 * e[t] / r})
			}
		}
		out = append(out, s)
	}
	return out
}

// links are the Grafana dashboards over the charts' range.
func (b *Builder) links(in Incident, charts []Chart) []Link {
	if b.opt.GrafanaURL == "" {
		return []Link{}
	}
	from, to := in.Start.Add(-b.opt.ChartBefore), in.End.Add(b.opt.ChartAfter)
	if len(charts) > 0 {
		from, to = charts[0].From, charts[0].To
	}
	rng := func(v url.Values) string {
		v.Set("from", strconv.FormatInt(from.UnixMilli(), 10))
		v.Set("to", strconv.FormatInt(to.UnixMilli(), 10))
		return v.Encode()
	}
	out := []Link{{Title: "Incident dashboard", URL: b.opt.GrafanaURL + "/d/" + url.PathEscape(b.opt.IncidentDashboard) + "?" + rng(url.Values{"var-incident": {in.ID}})}}
	for _, s := range in.Services {
		out = append(out, Link{Title: "Service dashboard: " + s, URL: b.opt.GrafanaURL + "/d/" + url.PathEscape(b.opt.ServiceDashboard) + "?" + rng(url.Values{"var-service": {s}})})
	}
	return out
}

// summary says in a few sentences what the bundle shows.
func summary(bd *Bundle) string {
	in := bd.Incident
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s on %s", cmp.Or(in.Title, in.ID), statusWord(in), strings.Join(in.Services, ", "))
	fmt.Fprintf(&b, " from %s to %s UTC (%s).", in.Start.Format("2006-01-02 15:04"), in.End.Format("2006-01-02 15:04"), humanDuration(time.Duration(in.Duration)))
	if in.Severity != "" {
		fmt.Fprintf(&b, " Severity %s.", in.Severity)
	}
	if im := bd.Impact; im != nil {
		r := im.Report
		fmt.Fprintf(&b, " About %.0f users (%.0f–%.0f) and %.0f customers affected beyond the baseline.",
			r.AffectedUsers.Excess, r.AffectedUsers.ExcessLow, r.AffectedUsers.ExcessHigh, r.AffectedCustomers.Excess)
	}
	switch {
	case in.Cause != "" && in.Cause != "none":
		fmt.Fprintf(&b, " Confirmed cause: %s.", in.Cause)
	case in.Cause == "none":
		b.WriteString(" The team found no change to blame.")
	}
	if k := bd.Causes.Last; k != nil && k.Answer != nil {
		if a := k.Answer; a.Verdict == correlate.VerdictCause && len(a.Candidates) > 0 {
			c := a.Candidates[0]
			fmt.Fprintf(&b, " Top suspect: %s (%s, score %.2f).", changeLabel(c.Change), c.Change.ID, c.Score)
		} else if a.Summary != "" {
			b.WriteString(" " + a.Summary)
		}
	}
	return b.String()
}

func statusWord(in Incident) string {
	if in.Status == "resolved" {
		return "resolved incident"
	}
	return "ongoing incident"
}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Hour {
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func cases(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func orNone(s string) string { return cmp.Or(s, "(none)") }

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
