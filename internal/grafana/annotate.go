package grafana

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// Tags. Grafana tags are free strings; correlator's are either a bare word
// (correlator, change, incident, and a change's kind) or key:value, the
// form Grafana's own tag filter and most annotation senders use, so that
// an annotation query can ask for "service:api" without matching a change
// whose version happens to be "api".
const (
	tagCorrelator = "correlator"
	tagChange     = "change"
	tagIncident   = "incident"
)

// Attribute of an incident holding its post-mortem's address (written by
// the post-mortem auto-attach).
const attrPostmortemURL = "postmortem.url"

func changeKey(id string) string   { return "change:" + id }
func incidentKey(id string) string { return "incident:" + id }

// changeAnnotation is the point annotation of a change: what changed, in
// which environment, from which version to which, with a link to it.
func changeAnnotation(c event.Change) annotation {
	tags := []string{tagCorrelator, tagChange, string(c.Kind), "service:" + c.Service}
	if c.Environment != "" {
		tags = append(tags, "env:"+c.Environment)
	}
	if c.Version != "" {
		tags = append(tags, "version:"+c.Version)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "<b>%s %s", esc(string(c.Kind)), esc(c.Service))
	if c.Version != "" {
		fmt.Fprintf(&b, " %s", esc(c.Version))
	}
	b.WriteString("</b>")
	if c.PreviousVersion != "" {
		fmt.Fprintf(&b, " (from %s)", esc(c.PreviousVersion))
	}
	if c.Environment != "" {
		fmt.Fprintf(&b, " in %s", esc(c.Environment))
	}
	if c.Title != "" {
		fmt.Fprintf(&b, ": %s", esc(c.Title))
	}
	var meta []string
	if c.Author != "" {
		meta = append(meta, "by "+esc(c.Author))
	}
	if c.Commit != "" {
		meta = append(meta, "commit "+esc(shortCommit(c.Commit)))
	}
	if c.Source != "" {
		meta = append(meta, "via "+esc(c.Source))
	}
	if l := link(c.URL, "details"); l != "" {
		meta = append(meta, l)
	}
	if len(meta) > 0 {
		b.WriteString("<br>" + strings.Join(meta, " · "))
	}
	return annotation{Key: changeKey(c.ID), Time: c.Time, Text: b.String(), Tags: tags}
}

// incidentAnnotation is the region annotation of an incident, from its
// onset (or opening) to its resolution, or to now while it is open. The
// text leads with the top suspect of the latest ranking, and its score.
// causes is the latest snapshot's ranking, nil when there is none yet.
// openRegionStep is how often an open incident's region grows.
const openRegionStep = 5 * time.Minute

func incidentAnnotation(in store.Incident, causes *correlate.Answer, liveURL string, now time.Time) annotation {
	start := in.Onset
	if start.IsZero() || (!in.OpenedAt.IsZero() && in.OpenedAt.Before(start)) {
		// The region covers the opening too: an incident declared before
		// its detected onset still shows where people started looking.
		start = in.OpenedAt
	}
	// An open region grows in steps: each step changes what is sent, so
	// a step of a minute would rewrite every open incident's annotation
	// (and its store record) every minute.
	end := now.Truncate(openRegionStep)
	if in.Status == "resolved" && !in.ResolvedAt.IsZero() {
		end = in.ResolvedAt
	}
	if end.Before(start) {
		end = start
	}

	tags := []string{tagCorrelator, tagIncident}
	if in.Severity != "" {
		tags = append(tags, "severity:"+in.Severity)
	}
	for _, s := range in.Services {
		tags = append(tags, "service:"+s)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "<b>Incident %s", esc(in.ID))
	if in.Title != "" {
		fmt.Fprintf(&b, ": %s", esc(in.Title))
	}
	b.WriteString("</b>")
	var state []string
	if in.Severity != "" {
		state = append(state, esc(in.Severity))
	}
	if in.Status != "" {
		state = append(state, esc(in.Status))
	}
	if len(state) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(state, ", "))
	}
	b.WriteString("<br>" + suspect(causes))
	var links []string
	if l := link(in.Attributes[attrPostmortemURL], "post-mortem"); l != "" {
		links = append(links, l)
	}
	if l := link(liveURL, "live incident page"); l != "" {
		links = append(links, l)
	}
	if len(links) > 0 {
		b.WriteString("<br>" + strings.Join(links, " · "))
	}
	return annotation{Key: incidentKey(in.ID), Time: start, TimeEnd: end, Text: b.String(), Tags: tags}
}

// suspect says what the ranking blames, in one line.
func suspect(a *correlate.Answer) string {
	if a == nil {
		return "No ranking of causes yet."
	}
	if len(a.Candidates) == 0 {
		return "No changes in scope."
	}
	top := a.Candidates[0]
	c := top.Change
	what := esc(string(c.Kind)) + " " + esc(c.Service)
	if c.Version != "" {
		what += " " + esc(c.Version)
	}
	score := strconv.FormatFloat(top.Score, 'f', 2, 64)
	if a.Verdict == correlate.VerdictAbstain {
		return fmt.Sprintf("No change explains it; closest: %s (score %s)", what, score)
	}
	return fmt.Sprintf("Top suspect: <b>%s</b> (score %s)", what, score)
}

func esc(s string) string { return html.EscapeString(s) }

// link renders an anchor to an http(s) address and nothing for anything
// else: a change's URL comes from webhooks, and Grafana's sanitizer is
// the second line of defence, not the first.
func link(raw, label string) string {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return fmt.Sprintf(`<a href="%s" target="_blank">%s</a>`, esc(u.String()), esc(label))
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// contentHash identifies what an annotation shows; an annotation whose
// hash is unchanged is not sent again.
func contentHash(a annotation) string {
	b, _ := json.Marshal(struct {
		Time, TimeEnd int64
		Text          string
		Tags          []string
	}{ms(a.Time), ms(a.TimeEnd), a.Text, a.Tags})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// scopeHash identifies where annotations go (dashboard and panel, or the
// organisation). An update cannot move an annotation, so an annotation
// recorded under another scope is deleted and created anew.
func scopeHash(dashboardUID string, panelID int64, orgID int64) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%d\x00%s\x00%d", orgID, dashboardUID, panelID)))
	return hex.EncodeToString(h[:4])
}

// recordHash is the hash kept in the store: scope, then content.
func recordHash(scope, content string) string { return scope + "." + content }

func splitHash(h string) (scope, content string) {
	scope, content, _ = strings.Cut(h, ".")
	return scope, content
}
