// Package postmortem builds an incident's post-mortem evidence bundle: the
// draft a team edits in its post-mortem meeting, prefilled from what the
// store holds (the incident's history, its snapshots, changes, errors,
// logs and metrics), and renders it as Markdown, JSON or self-contained
// HTML with SVG (and PNG) charts. Every figure in a bundle cites the store
// queries, with their parameters, that produced it, so that a reviewer can
// run them again and get the same figure.
package postmortem

import (
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/store"

	"github.com/correlator/correlator/internal/duration"
)

// Bundle is the evidence of one incident. It is data only: the renderers
// turn it into documents and charts. Times are UTC.
type Bundle struct {
	Incident    Incident  `json:"incident"`
	GeneratedAt time.Time `json:"generated_at"`
	// Live is set while the incident is open: the bundle will change.
	Live    bool   `json:"live"`
	Summary string `json:"summary"`
	// Impact is nil when no snapshot has an impact report yet.
	Impact    *Impact         `json:"impact"`
	Timeline  []TimelineEntry `json:"timeline"`
	Causes    Causes          `json:"causes"`
	NewErrors []NewError      `json:"new_errors"`
	// NewErrorsNote says what the frames could not show, if anything.
	NewErrorsNote string      `json:"new_errors_note,omitempty"`
	Logs          []LogSample `json:"logs"`
	Charts        []Chart     `json:"charts"`
	Links         []Link      `json:"links"`
	Team          Team        `json:"team"`
	// Queries are every read behind the bundle; claims cite them by ID.
	Queries []Query `json:"queries"`
	// Warnings are the parts that could not be built, and why.
	Warnings []string `json:"warnings,omitempty"`
}

// Incident is the incident's latest state, with what its history adds.
type Incident struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Status   string    `json:"status"`
	Severity string    `json:"severity,omitempty"`
	Services []string  `json:"services"`
	OpenedAt time.Time `json:"opened_at"`
	// Start is when the symptoms began as best known: the earlier of the
	// recorded onset (else the opening) and the detected one.
	Start      time.Time `json:"start"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// End is the resolution, or the bundle's time while open.
	End      time.Time `json:"end"`
	Duration Duration  `json:"duration"`
	// Cause is the confirmed cause change id, "none", or "" (not recorded).
	Cause      string            `json:"cause,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	QueryIDs   []string          `json:"query_ids"`
}

// Duration is a time.Duration that reads as "1h23m" in JSON and YAML;
// see package duration.
type Duration = duration.Duration

// Impact is the latest snapshot's impact report, and where it came from.
type Impact struct {
	SnapshotAt time.Time     `json:"snapshot_at"`
	Report     impact.Report `json:"report"`
	// Duration is the incident's, repeated here as part of the impact.
	Duration Duration `json:"duration"`
	Severity string   `json:"severity"`
	QueryIDs []string `json:"query_ids"`
}

// Kinds of timeline entries.
const (
	EntryChange     = "change"
	EntryAlert      = "alert"
	EntryOpened     = "opened"
	EntryOnset      = "onset"
	EntryNewError   = "new_error"
	EntryAction     = "action"
	EntryUpdate     = "update"
	EntryResolution = "resolution"
)

// TimelineEntry is one event of the incident, from the stored records.
type TimelineEntry struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	Text string    `json:"text"`
	// Ref is the change id of a change, the fingerprint of a new error.
	Ref      string   `json:"ref,omitempty"`
	URL      string   `json:"url,omitempty"`
	QueryIDs []string `json:"query_ids"`
}

// Causes holds what was known of the causes when the incident opened (the
// first snapshot) and most recently (the last one).
type Causes struct {
	First *Known `json:"first"`
	Last  *Known `json:"last"`
	// Confirmed is the cause recorded on resolution, if any.
	Confirmed string `json:"confirmed,omitempty"`
}

// Known is one snapshot's ranked causes.
type Known struct {
	TakenAt  time.Time         `json:"taken_at"`
	Trigger  string            `json:"trigger"`
	Answer   *correlate.Answer `json:"answer"`
	Error    string            `json:"error,omitempty"`
	QueryIDs []string          `json:"query_ids"`
}

// NewError is an error fingerprint first seen during the incident.
type NewError struct {
	Service     string    `json:"service"`
	Fingerprint string    `json:"fingerprint"`
	Type        string    `json:"type"`
	Message     string    `json:"message"`
	Release     string    `json:"first_seen_release"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	Count       uint64    `json:"count"`
	// Frames are the in-app frames, innermost first, of a recent event.
	Frames   []string `json:"frames,omitempty"`
	QueryIDs []string `json:"query_ids"`
}

// LogSample is a sample of a service's warning and error lines.
type LogSample struct {
	Service  string          `json:"service"`
	Lines    []store.LogLine `json:"lines"`
	QueryIDs []string        `json:"query_ids"`
}

// Chart is a time series chart's data; the renderers draw it.
type Chart struct {
	ID      string    `json:"id"`
	Title   string    `json:"title"`
	Unit    string    `json:"unit"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Series  []Series  `json:"series"`
	Markers []Marker  `json:"markers"`
	// Shade is the incident's span, drawn behind the series.
	Shade    [2]time.Time `json:"shade"`
	QueryIDs []string     `json:"query_ids"`
}

// Series is one line of a chart.
type Series struct {
	Name   string  `json:"name"`
	Points []Point `json:"points"`
}

// Point is one value at one minute.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// Marker is a change drawn as a vertical line.
type Marker struct {
	Time  time.Time `json:"time"`
	Label string    `json:"label"`
}

// Link is a link to a dashboard over the incident's range.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Team holds the sections the team fills in; the bundle leaves them empty.
type Team struct {
	ContributingFactors []string     `json:"contributing_factors"`
	WentWell            []string     `json:"went_well"`
	ActionItems         []ActionItem `json:"action_items"`
}

// ActionItem is a follow-up with its owner and due date.
type ActionItem struct {
	Item  string `json:"item"`
	Owner string `json:"owner"`
	Due   string `json:"due"`
}

// Query is a read behind the bundle: what it was for, and the record that
// runs it again.
type Query struct {
	ID      string `json:"id"`
	Purpose string `json:"purpose"`
	store.QueryRecord
}

// changeLabel is a change in a few words: "deploy api v42".
func changeLabel(c event.Change) string {
	s := string(c.Kind) + " " + c.Service
	if c.Version != "" {
		s += " " + c.Version
	}
	return s
}
