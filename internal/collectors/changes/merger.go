package changes

import (
	"container/list"
	"context"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/event"
)

// Reader reads a change back from the store by id, so that a source that
// arrives after a restart merges with what the other sources wrote before
// it. The store implements it; found is false when no change has the id.
type Reader interface {
	ChangeByID(ctx context.Context, id string) (c event.Change, found bool, err error)
}

// MergerOptions configure a Merger. Zero values take the defaults.
type MergerOptions struct {
	// Streams bounds the (service, environment) histories kept, least
	// recently used first out. Default 1024.
	Streams int
	// PerStream bounds the deploys kept per history, oldest first out.
	// Default 16. (At about a kilobyte a change, the defaults bound the
	// cache to some 16 MB.)
	PerStream int
	// Window is how far apart in time two sources of one deploy may be.
	// Default 2h.
	Window time.Duration
	// Reader, when set, is asked for a change the cache does not hold.
	Reader Reader
	// Logger receives read-back failures.
	Logger *slog.Logger
}

// MergerOptionsFrom returns the options of the configuration's merge
// section; reader and log are the caller's.
func MergerOptionsFrom(c config.ChangeMerge, reader Reader, log *slog.Logger) MergerOptions {
	return MergerOptions{Window: time.Duration(c.Window), Streams: c.Streams, PerStream: c.PerStream, Reader: reader, Logger: log}
}

// Default merger bounds.
const (
	DefaultStreams   = 1024
	DefaultPerStream = 16
	DefaultWindow    = 2 * time.Hour
)

// Merger combines the reports of several sources about one change into
// one record before it is written. Collectors (through a MergingWriter)
// hand it every change; it returns the change to write.
//
// The store keeps one row per (service, time, id) (a ReplacingMergeTree
// whose sort key ends with the id), so a merged change must be written
// whole, with every source, and always with the same time. The Merger
// therefore keeps, per service and environment, the recent changes it
// emitted (a bounded LRU of bounded histories) and merges a new report
// into the matching one:
//
//   - A report matches an earlier change with the same identity (see
//     Identity) when the two are at most Window apart and no change of
//     another version of that service and environment lies between them.
//     So a rollback to a version deployed earlier is a new change, not a
//     late report of the old one.
//   - The merged change keeps the id and the time of the first report: the
//     time is the row's sort key, and moving it would leave the first row
//     behind as a duplicate. (When the first report is not the earliest,
//     the merged time is a few minutes late; the sources of one deploy
//     report within minutes of each other.)
//   - Each other field is the first non-empty one, except: the kind is a
//     rollback if any report says so; a version that is a tag wins over
//     one that is a commit hash; the commit keeps its longest spelling; the
//     status attribute is "succeeded" if any report succeeded; attributes
//     are united, the first report's value winning; and the sources
//     attribute lists every source, sorted, comma-separated.
//   - A new change's id is IdentityID, unless a change with that id is
//     already known at another time (the version was deployed before: this
//     is a redeploy or rollback to it); then it is HashID of that id and
//     the new change's time, so the two stay distinct.
//   - A new deploy without a previous version gets the version of the
//     latest earlier deploy in its history, and becomes a rollback when its
//     version is older (dotted numbers, "1.9.0" < "1.10.0") or was deployed
//     before that previous one.
//
// Across restarts the cache starts empty. Without a Reader, a source that
// reports again after a restart (the GitHub poller's backfill, a
// redelivered webhook) starts the change anew: the row it writes carries
// only the sources seen since the restart and, if its time differs from
// the first row's, sits beside it as a second row with the same id. With
// a Reader the Merger reads the stored change by IdentityID and merges
// into it, so nothing is lost; read failures are logged and the report is
// handled as if nothing were stored. A redeploy (an id derived from a
// time) cannot be read back this way: its late sources after a restart
// start a new change.
//
// Changes without an identity (flags, versionless changes) pass through.
// A Merger is safe for concurrent use.
type Merger struct {
	opt MergerOptions
	log *slog.Logger

	mu      sync.Mutex
	lru     *list.List               // of *history, most recently used first
	streams map[string]*list.Element // by Key.stream()
	stats   MergerStats
}

// MergerStats counts what a Merger did.
type MergerStats struct {
	New        int // reports that started a change
	Merged     int // reports merged into a known change
	ReadBack   int // stored changes read back through the Reader
	ReadErrors int // failed reads
}

// history is one service and environment's recent changes of one class,
// oldest first.
type history struct {
	stream string
	occ    []*occurrence
}

type occurrence struct {
	key Key
	c   event.Change // as last emitted
}

// NewMerger returns a Merger.
func NewMerger(opt MergerOptions) *Merger {
	if opt.Streams <= 0 {
		opt.Streams = DefaultStreams
	}
	if opt.PerStream <= 0 {
		opt.PerStream = DefaultPerStream
	}
	if opt.Window <= 0 {
		opt.Window = DefaultWindow
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Merger{opt: opt, log: log, lru: list.New(), streams: map[string]*list.Element{}}
}

// Stats returns the counts so far.
func (m *Merger) Stats() MergerStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Merge returns the change to write for the report c: c merged with what
// the other sources of the same change said, with its id set. A change
// without an identity is returned as it is.
func (m *Merger) Merge(ctx context.Context, c event.Change) event.Change {
	k, ok := Identity(&c)
	if !ok {
		return c
	}
	c = withSources(c)
	c.Time = c.Time.UTC()
	base := k.ID()

	m.mu.Lock()
	h := m.history(k)
	if o := h.match(k, c.Time, m.opt.Window); o != nil {
		out := m.mergeLocked(o, c)
		m.mu.Unlock()
		return out
	}
	if m.opt.Reader != nil && !h.hasID(base) {
		m.mu.Unlock()
		stored, found, err := m.opt.Reader.ChangeByID(ctx, base)
		m.mu.Lock()
		h = m.history(k) // it may have been evicted meanwhile
		if err != nil {
			m.stats.ReadErrors++
			m.log.Warn("cannot read a change back to merge into it; writing the report as a new change", "id", base, "service", c.Service, "err", err)
		} else if found && !h.hasID(base) {
			m.stats.ReadBack++
			stored.Time = stored.Time.UTC()
			h.insert(&occurrence{key: k, c: withSources(stored)}, m.opt.PerStream)
		}
		if o := h.match(k, c.Time, m.opt.Window); o != nil {
			out := m.mergeLocked(o, c)
			m.mu.Unlock()
			return out
		}
	}
	defer m.mu.Unlock()
	m.stats.New++
	c.ID = base
	if h.hasID(base) {
		c.ID = HashID(base, strconv.FormatInt(c.Time.UnixNano(), 10))
	}
	if prev := h.latestBefore(k, c.Time); prev != nil {
		if c.PreviousVersion == "" {
			c.PreviousVersion = displayVersion(&prev.c)
		}
		if c.Kind == event.ChangeDeploy && k.Class == "deploy" &&
			(olderVersion(k.Version, prev.key.Version) || h.deployedBefore(k.Version, prev.c.Time)) {
			c.Kind = event.ChangeRollback
		}
	}
	h.insert(&occurrence{key: k, c: c}, m.opt.PerStream)
	return clone(c)
}

// mergeLocked merges c into o and returns a copy of the result.
func (m *Merger) mergeLocked(o *occurrence, c event.Change) event.Change {
	m.stats.Merged++
	o.c = mergeInto(o.c, c)
	return clone(o.c)
}

// history returns (creating it) the history of k's stream and marks it
// recently used, evicting the least recently used beyond the bound.
func (m *Merger) history(k Key) *history {
	s := k.stream()
	if e, ok := m.streams[s]; ok {
		m.lru.MoveToFront(e)
		return e.Value.(*history)
	}
	h := &history{stream: s}
	m.streams[s] = m.lru.PushFront(h)
	for m.lru.Len() > m.opt.Streams {
		last := m.lru.Back()
		m.lru.Remove(last)
		delete(m.streams, last.Value.(*history).stream)
	}
	return h
}

// match returns the change of k's version closest to t, if it is within
// window of t and no other version's change lies between them.
func (h *history) match(k Key, t time.Time, window time.Duration) *occurrence {
	var best *occurrence
	var bestD time.Duration
	for _, o := range h.occ {
		if o.key.Version != k.Version {
			continue
		}
		d := absDuration(t.Sub(o.c.Time))
		if d > window || (best != nil && d >= bestD) || h.otherBetween(k.Version, o.c.Time, t) {
			continue
		}
		best, bestD = o, d
	}
	return best
}

// otherBetween reports whether a change of a version other than v lies
// strictly between a and b.
func (h *history) otherBetween(v string, a, b time.Time) bool {
	if b.Before(a) {
		a, b = b, a
	}
	for _, o := range h.occ {
		if o.key.Version != v && o.c.Time.After(a) && o.c.Time.Before(b) {
			return true
		}
	}
	return false
}

func (h *history) hasID(id string) bool {
	for _, o := range h.occ {
		if o.c.ID == id {
			return true
		}
	}
	return false
}

// latestBefore returns the latest change before t of a version other than
// k's.
func (h *history) latestBefore(k Key, t time.Time) *occurrence {
	for i := len(h.occ) - 1; i >= 0; i-- {
		if o := h.occ[i]; o.c.Time.Before(t) {
			if o.key.Version == k.Version {
				return nil // the same version just before: a redeploy, nothing to say
			}
			return o
		}
	}
	return nil
}

// deployedBefore reports whether version v was deployed before t.
func (h *history) deployedBefore(v string, t time.Time) bool {
	for _, o := range h.occ {
		if o.key.Version == v && o.c.Time.Before(t) {
			return true
		}
	}
	return false
}

// insert adds o in time order, dropping the oldest beyond max.
func (h *history) insert(o *occurrence, max int) {
	i, _ := slices.BinarySearchFunc(h.occ, o.c.Time, func(x *occurrence, t time.Time) int { return x.c.Time.Compare(t) })
	h.occ = slices.Insert(h.occ, i, o)
	if len(h.occ) > max {
		h.occ = slices.Delete(h.occ, 0, len(h.occ)-max)
	}
}

// mergeInto returns a, the change first written, with what b adds.
func mergeInto(a, b event.Change) event.Change {
	out := clone(a)
	if b.Kind == event.ChangeRollback {
		out.Kind = event.ChangeRollback
	}
	if out.Version == "" || (IsCommit(out.Version) && b.Version != "" && !IsCommit(b.Version)) {
		out.Version = b.Version
	}
	if len(b.Commit) > len(out.Commit) && (out.Commit == "" || strings.HasPrefix(strings.ToLower(b.Commit), strings.ToLower(out.Commit))) {
		out.Commit = b.Commit
	}
	for _, f := range [...]struct {
		dst *string
		src string
	}{
		{&out.Environment, b.Environment}, {&out.PreviousVersion, b.PreviousVersion},
		{&out.Author, b.Author}, {&out.Title, b.Title}, {&out.URL, b.URL}, {&out.Source, b.Source},
	} {
		if *f.dst == "" {
			*f.dst = f.src
		}
	}
	if out.Attributes == nil {
		out.Attributes = map[string]string{}
	}
	for k, v := range b.Attributes {
		switch {
		case k == SourcesAttr:
			out.Attributes[k] = joinSources(splitSources(out.Attributes[k]), splitSources(v))
		case k == StatusAttr && v == StatusSucceeded:
			out.Attributes[k] = v
		case out.Attributes[k] == "":
			out.Attributes[k] = v
		}
	}
	return out
}

// withSources returns c with its source listed in the sources attribute.
func withSources(c event.Change) event.Change {
	c = clone(c)
	var src []string
	if c.Source != "" {
		src = append(src, c.Source)
	}
	all := joinSources(splitSources(c.Attributes[SourcesAttr]), src)
	if all == "" {
		return c
	}
	if c.Attributes == nil {
		c.Attributes = map[string]string{}
	}
	c.Attributes[SourcesAttr] = all
	return c
}

func splitSources(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinSources(a, b []string) string {
	all := slices.Concat(a, b)
	slices.Sort(all)
	return strings.Join(slices.Compact(all), ",")
}

// Sources returns the sources listed by c's sources attribute, or its
// Source alone.
func Sources(c event.Change) []string {
	if s := splitSources(c.Attributes[SourcesAttr]); len(s) > 0 {
		return s
	}
	if c.Source != "" {
		return []string{c.Source}
	}
	return nil
}

func clone(c event.Change) event.Change {
	c.Attributes = maps.Clone(c.Attributes)
	return c
}

func displayVersion(c *event.Change) string {
	if c.Version != "" {
		return c.Version
	}
	return c.Commit
}

// olderVersion reports whether a is an older dotted-number version than b
// ("1.9.0" < "1.10.0"). Versions that are not dotted numbers compare as
// neither older nor newer.
func olderVersion(a, b string) bool {
	pa, ok1 := dotted(a)
	pb, ok2 := dotted(b)
	if !ok1 || !ok2 {
		return false
	}
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func dotted(v string) ([]int, bool) {
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return nil, false
	}
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
