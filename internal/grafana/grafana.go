// Package grafana mirrors correlator's changes and incidents into Grafana as
// annotations, so that responders see them on the dashboards they already
// watch: every change as a point annotation, every incident as a region
// with its top suspect, its score and links to its post-mortem.
//
// The store is the source of truth and Grafana a copy that may lag. For
// each object the store keeps the id of its Grafana annotation and a hash
// of what was sent (store.Annotation, key "change:ID" or "incident:ID"):
// a sync creates what has no record, updates in place (PUT) what changed,
// and sends nothing for the rest. When Grafana is down a sync fails and is
// retried at the next interval; nothing is lost, because what is unsynced
// is exactly what has no record or a stale hash.
package grafana

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// Store is what the overlay reads and writes; *store.Store implements it.
// Times are UTC. Annotations and WriteAnnotation keep, per key, the latest
// record written (the store deduplicates on the key).
type Store interface {
	// ChangesBetween returns the changes of every service in [from, to),
	// oldest first, the newest limit when there are more.
	ChangesBetween(ctx context.Context, from, to time.Time, limit int) ([]event.Change, error)
	// CurrentIncidents returns the latest state of every incident still
	// open or with a state written since since.
	CurrentIncidents(ctx context.Context, since time.Time, limit int) ([]store.Incident, error)
	// CurrentIncident returns one incident's latest state; found is false
	// when it has none.
	CurrentIncident(ctx context.Context, id string) (in store.Incident, found bool, err error)
	// LatestSnapshots returns each incident's latest snapshot that holds a
	// ranking of causes.
	LatestSnapshots(ctx context.Context, incidentIDs []string) (map[string]store.Snapshot, error)
	Annotations(ctx context.Context, keys []string) (map[string]store.Annotation, error)
	WriteAnnotation(ctx context.Context, a store.Annotation) error
}

// Limits of one sync. Beyond them the newest changes and the most recently
// opened incidents are kept: a first sync over a busy week must not send
// Grafana tens of thousands of requests.
const (
	maxChanges   = 5000
	maxIncidents = 500
	// findLimit bounds the listing of correlator's annotations that
	// precedes creations (see Syncer.plan).
	findLimit = 5000
	// maxBackoff is how many sync intervals at most separate two attempts
	// while Grafana keeps failing.
	maxBackoff = 10
)

// Options are a Syncer's collaborators; every field is optional.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; default time.Now.
	Now func() time.Time
	// HTTPClient sends the requests; default a client of the library's
	// own (Go's default transport settings).
	HTTPClient *http.Client
	// Getenv reads token_env; default os.Getenv.
	Getenv func(string) string
	// LiveLink, when set, is the address of an incident's live page
	// (signed, see package livelink); incident annotations link to it.
	LiveLink func(in store.Incident) string
}

// Result counts what one sync did.
type Result struct {
	// Created and Updated are annotations written to Grafana; Unchanged
	// were already up to date; Failed were refused (they stay unsynced and
	// are tried again at the next sync).
	Created, Updated, Unchanged, Failed int
}

// Syncer mirrors the store into Grafana. Its methods are safe for
// concurrent use; syncs run one at a time.
type Syncer struct {
	cfg    Config
	st     Store
	cl     *client
	scope  string
	log    *slog.Logger
	m      *metrics
	now    func() time.Time
	notify chan string
	live   func(in store.Incident) string

	// mu serialises syncs, so two of them never both create the same
	// annotation, and guards dashboardOK.
	mu sync.Mutex
	// dashboardOK is set once the configured dashboard was found.
	dashboardOK bool
}

// New builds a Syncer for an enabled, valid configuration.
func New(cfg Config, st Store, opt Options) (*Syncer, error) {
	if !cfg.Enabled() {
		return nil, errors.New("grafana.url: missing")
	}
	cfg = cfg.withDefaults()
	getenv := opt.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if err := cfg.validate(getenv); err != nil {
		return nil, err
	}
	token, err := cfg.token(getenv)
	if err != nil {
		return nil, err
	}
	cl, err := newClient(cfg, token, opt.HTTPClient)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opt.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Syncer{
		cfg: cfg, st: st, cl: cl, m: m,
		scope:  scopeHash(cfg.DashboardUID, cfg.PanelID, cfg.OrgID),
		log:    opt.Logger,
		now:    opt.Now,
		notify: make(chan string, 64),
		live:   opt.LiveLink,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "grafana")
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// item is one object to mirror: its annotation and the hash recorded once
// Grafana has it.
type item struct {
	kind string // "change" or "incident", the metrics' label
	a    annotation
	hash string
}

func (s *Syncer) newItem(kind string, a annotation) item {
	return item{kind: kind, a: a, hash: recordHash(s.scope, contentHash(a))}
}

// SyncOnce brings Grafana up to date with the store: the changes of the
// last lookback, and the incidents open or touched in it. It returns what
// it did and, when anything stays unsynced, why.
func (s *Syncer) SyncOnce(ctx context.Context) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	since := now.Add(-time.Duration(s.cfg.Lookback))
	// Changes stamped a little ahead (a deploy tool's clock) are in too.
	changes, err := s.st.ChangesBetween(ctx, since, now.Add(time.Hour), maxChanges)
	if err != nil {
		return Result{}, fmt.Errorf("read changes: %w", err)
	}
	incidents, err := s.st.CurrentIncidents(ctx, since, maxIncidents)
	if err != nil {
		return Result{}, fmt.Errorf("read incidents: %w", err)
	}
	items := make([]item, 0, len(changes)+len(incidents))
	for _, c := range changes {
		items = append(items, s.newItem(tagChange, changeAnnotation(c)))
	}
	inc, err := s.incidentItems(ctx, incidents, now)
	if err != nil {
		return Result{}, err
	}
	items = append(items, inc...)
	res, err := s.push(ctx, items)
	if err == nil {
		s.m.lastSuccess.Set(float64(s.now().Unix()))
	}
	return res, err
}

// SyncIncident brings one incident's annotation up to date at once; the
// incident code calls it when an incident opens, changes or resolves, so
// the region does not wait for the next interval. It blocks for at most a
// few requests' timeouts; Notify is the non-blocking form.
func (s *Syncer) SyncIncident(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, found, err := s.st.CurrentIncident(ctx, id)
	if err != nil {
		return fmt.Errorf("read incident %q: %w", id, err)
	}
	if !found {
		return fmt.Errorf("incident %q: not found", id)
	}
	items, err := s.incidentItems(ctx, []store.Incident{in}, s.now().UTC())
	if err != nil {
		return err
	}
	_, err = s.push(ctx, items)
	return err
}

// Notify asks Run to sync one incident soon, without waiting. When Run is
// behind, the request is dropped: the next full sync covers it anyway.
func (s *Syncer) Notify(id string) {
	select {
	case s.notify <- id:
	default:
	}
}

// Run syncs every sync interval until ctx ends, and serves Notify. After a
// failed sync the wait doubles, up to ten intervals, and returns to one
// interval after a success. It returns nil when ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-s.notify:
			if err := s.SyncIncident(ctx, id); err != nil && ctx.Err() == nil {
				s.log.Warn("incident annotation not synced", "incident", id, "err", err)
			}
			continue
		case <-timer.C:
		}
		res, err := s.SyncOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			failures++
			s.log.Warn("grafana sync failed", "err", err, "created", res.Created, "updated", res.Updated,
				"failed", res.Failed, "retry_in", s.backoff(failures).String())
		default:
			failures = 0
			if res.Created+res.Updated > 0 {
				s.log.Info("grafana synced", "created", res.Created, "updated", res.Updated, "unchanged", res.Unchanged)
			}
		}
		timer.Reset(s.backoff(failures))
	}
}

// backoff is the wait before the next sync after failures failed ones.
func (s *Syncer) backoff(failures int) time.Duration {
	d := time.Duration(s.cfg.SyncInterval)
	for i := 0; i < failures && d < maxBackoff*time.Duration(s.cfg.SyncInterval); i++ {
		d *= 2
	}
	return min(d, maxBackoff*time.Duration(s.cfg.SyncInterval))
}

// incidentItems builds the incidents' annotations with their latest
// rankings.
func (s *Syncer) incidentItems(ctx context.Context, incidents []store.Incident, now time.Time) ([]item, error) {
	if len(incidents) == 0 {
		return nil, nil
	}
	ids := make([]string, len(incidents))
	for i, in := range incidents {
		ids[i] = in.ID
	}
	snaps, err := s.st.LatestSnapshots(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read snapshots: %w", err)
	}
	items := make([]item, 0, len(incidents))
	for _, in := range incidents {
		var causes *correlate.Answer
		if sn, ok := snaps[in.ID]; ok {
			var a correlate.Answer
			if err := json.Unmarshal([]byte(sn.Causes), &a); err != nil {
				// A snapshot we cannot read should not keep the region
				// off the dashboards: it is shown without a suspect.
				s.log.Warn("incident snapshot unreadable", "incident", in.ID, "taken_at", sn.TakenAt, "err", err)
			} else {
				causes = &a
			}
		}
		items = append(items, s.newItem(tagIncident, incidentAnnotation(in, causes, s.liveLink(in), now)))
	}
	return items, nil
}

// op is what a sync does for one item.
type op int

const (
	opNone   op = iota
	opCreate    // no annotation known: POST
	opUpdate    // known, content changed: PUT to id
	opAdopt     // found in Grafana with this content, unrecorded: record id
	opMove      // recorded in another scope: DELETE id, then POST
)

type step struct {
	item
	op op
	id int64
}

// push sends what differs from the records and records what Grafana took.
func (s *Syncer) push(ctx context.Context, items []item) (Result, error) {
	var res Result
	if len(items) == 0 {
		return res, nil
	}
	if err := s.checkDashboard(ctx); err != nil {
		return res, err
	}
	steps, err := s.plan(ctx, items)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, st := range steps {
		if st.op == opNone {
			res.Unchanged++
			continue
		}
		id, did, err := s.apply(ctx, st)
		if err != nil {
			res.Failed++
			s.m.failed.WithLabelValues(st.kind).Inc()
			err = fmt.Errorf("annotation %s: %w", st.a.Key, err)
			if unavailable(err) || ctx.Err() != nil {
				// Grafana takes nothing now; the rest waits for the next
				// sync rather than fail one by one.
				return res, errors.Join(append(errs, err)...)
			}
			s.log.Warn("annotation refused", "key", st.a.Key, "err", err)
			errs = append(errs, err)
			continue
		}
		rec := store.Annotation{Key: st.a.Key, ID: id, Hash: st.hash, SyncedAt: s.now().UTC()}
		if err := s.st.WriteAnnotation(ctx, rec); err != nil {
			// Grafana has it but the store does not know: the next sync
			// finds it by its data instead of creating it again.
			return res, fmt.Errorf("record annotation %s (grafana id %d): %w", st.a.Key, id, err)
		}
		switch did {
		case opCreate:
			res.Created++
			s.m.created.WithLabelValues(st.kind).Inc()
		case opUpdate:
			res.Updated++
			s.m.updated.WithLabelValues(st.kind).Inc()
		default:
			res.Unchanged++
		}
	}
	return res, errors.Join(errs...)
}

// checkDashboard verifies the configured dashboard once per process.
func (s *Syncer) checkDashboard(ctx context.Context) error {
	if s.cfg.DashboardUID == "" || s.dashboardOK {
		return nil
	}
	if err := s.cl.checkDashboard(ctx); err != nil {
		return err
	}
	s.dashboardOK = true
	return nil
}

// plan compares items with their records. When some have none, it first
// lists correlator's annotations in Grafana over their time range: one
// created by a sync that died before recording its id is adopted, not
// created twice.
func (s *Syncer) plan(ctx context.Context, items []item) ([]step, error) {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.a.Key
	}
	recs, err := s.st.Annotations(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read annotation records: %w", err)
	}
	steps := make([]step, len(items))
	var from, to time.Time
	for i, it := range items {
		rec, ok := recs[it.a.Key]
		recScope, _ := splitHash(rec.Hash)
		switch {
		case !ok:
			steps[i] = step{item: it, op: opCreate}
			end := it.a.TimeEnd
			if end.IsZero() {
				end = it.a.Time
			}
			if from.IsZero() || it.a.Time.Before(from) {
				from = it.a.Time
			}
			if end.After(to) {
				to = end
			}
		case recScope != s.scope:
			steps[i] = step{item: it, op: opMove, id: rec.ID}
		case rec.Hash != it.hash:
			steps[i] = step{item: it, op: opUpdate, id: rec.ID}
		default:
			steps[i] = step{item: it, op: opNone, id: rec.ID}
		}
	}
	if from.IsZero() {
		return steps, nil
	}
	found, err := s.cl.find(ctx, from, to, findLimit)
	if err != nil {
		return nil, fmt.Errorf("list correlator annotations: %w", err)
	}
	for i, st := range steps {
		f, ok := found[st.a.Key]
		if st.op != opCreate || !ok {
			continue
		}
		if f.Hash == st.hash {
			steps[i].op, steps[i].id = opAdopt, f.ID
		} else {
			steps[i].op, steps[i].id = opUpdate, f.ID
		}
	}
	return steps, nil
}

// apply performs one step and returns the annotation's id and what was
// done in the end (an update of an annotation deleted in Grafana becomes a
// creation).
func (s *Syncer) apply(ctx context.Context, st step) (int64, op, error) {
	switch st.op {
	case opAdopt:
		return st.id, opNone, nil
	case opMove:
		if err := s.cl.remove(ctx, st.id); err != nil {
			return 0, opNone, fmt.Errorf("delete from previous scope: %w", err)
		}
	case opUpdate:
		err := s.cl.update(ctx, st.id, st.a, st.hash)
		if err == nil {
			return st.id, opUpdate, nil
		}
		if !isStatus(err, http.StatusNotFound) {
			return 0, opNone, fmt.Errorf("update id %d: %w", st.id, err)
		}
		// Someone deleted it in Grafana: it is made again, with a new id.
		s.log.Info("annotation gone from grafana, creating it again", "key", st.a.Key, "old_id", st.id)
	}
	id, err := s.cl.create(ctx, st.a, st.hash)
	if err != nil {
		return 0, opNone, fmt.Errorf("create: %w", err)
	}
	return id, opCreate, nil
}

// liveLink is the incident's live page, or "" when there is none.
func (s *Syncer) liveLink(in store.Incident) string {
	if s.live == nil {
		return ""
	}
	return s.live(in)
}
