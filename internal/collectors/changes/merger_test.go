package changes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func deploy(at time.Time, version, source string) event.Change {
	return event.Change{Time: at, Kind: event.ChangeDeploy, Service: "api", Environment: "production", Version: version, Source: source}
}

func TestMergerMergesSourcesOfOneDeploy(t *testing.T) {
	m := NewMerger(MergerOptions{})
	ctx := context.Background()

	gh := deploy(t0, "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d", "github")
	gh.Commit = gh.Version
	gh.Author, gh.URL = "octocat", "https://github.com/acme/api/actions/runs/1"
	gh.Attributes = map[string]string{StatusAttr: StatusFailed, "github.deployment_id": "42"}
	first := m.Merge(ctx, gh)

	argo := deploy(t0.Add(-30*time.Second), "a84d88e", "argocd") // short hash, earlier time
	argo.Title = "Argo CD synced api"
	argo.Attributes = map[string]string{StatusAttr: StatusSucceeded, "argocd.application": "api-prod"}
	second := m.Merge(ctx, argo)

	mark := deploy(t0.Add(time.Minute), "v1.4.2", "mark") // a tag: no shared identity with the hash
	third := m.Merge(ctx, mark)

	if first.ID != IdentityID(&gh) || second.ID != first.ID {
		t.Fatalf("ids %s, %s; want both %s", first.ID, second.ID, IdentityID(&gh))
	}
	if !second.Time.Equal(t0) {
		t.Errorf("merged time %v, want the first report's %v", second.Time, t0)
	}
	if got := second.Attributes[SourcesAttr]; got != "argocd,github" {
		t.Errorf("sources %q, want argocd,github", got)
	}
	if second.Attributes[StatusAttr] != StatusSucceeded {
		t.Errorf("status %q: a success from any source wins", second.Attributes[StatusAttr])
	}
	if second.Author != "octocat" || second.Title != "Argo CD synced api" || second.Source != "github" ||
		second.Attributes["github.deployment_id"] != "42" || second.Attributes["argocd.application"] != "api-prod" {
		t.Errorf("fields not united: %+v", second)
	}
	if second.Commit != gh.Commit {
		t.Errorf("commit %q, want the full hash", second.Commit)
	}
	// The tag is another identity (no commit in common is known): a change of its own.
	if third.ID == first.ID {
		t.Error("a tag-only report merged with a hash-only one")
	}
	if st := m.Stats(); st.New != 2 || st.Merged != 1 {
		t.Errorf("stats %+v, want 2 new and 1 merged", st)
	}
}

func TestMergerPrefersTagOverCommit(t *testing.T) {
	m := NewMerger(MergerOptions{})
	a := deploy(t0, "", "argocd")
	a.Commit = "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"
	b := deploy(t0.Add(time.Minute), "a84d88e", "github") // same commit as a version
	out := m.Merge(context.Background(), a)
	if out.Version != "" {
		t.Fatalf("version %q", out.Version)
	}
	out = m.Merge(context.Background(), b)
	if out.Version != "a84d88e" || out.Attributes[SourcesAttr] != "argocd,github" {
		t.Errorf("got %+v", out)
	}
}

func TestMergerRollbackIsANewChange(t *testing.T) {
	m := NewMerger(MergerOptions{})
	ctx := context.Background()
	v1 := m.Merge(ctx, deploy(t0, "v1.4.1", "github"))
	v2 := m.Merge(ctx, deploy(t0.Add(10*time.Minute), "v1.4.2", "github"))
	back := m.Merge(ctx, deploy(t0.Add(20*time.Minute), "v1.4.1", "argocd"))
	if v2.PreviousVersion != "v1.4.1" || v2.Kind != event.ChangeDeploy {
		t.Errorf("v2: previous %q kind %s", v2.PreviousVersion, v2.Kind)
	}
	if back.ID == v1.ID || back.ID != HashID(v1.ID, strconv.FormatInt(back.Time.UnixNano(), 10)) {
		t.Errorf("rollback id %s: want a new id derived from %s and its time", back.ID, v1.ID)
	}
	if back.Kind != event.ChangeRollback || back.PreviousVersion != "v1.4.2" {
		t.Errorf("rollback: kind %s previous %q", back.Kind, back.PreviousVersion)
	}
	// A late report of the first deploy still finds it: nothing lies between.
	late := m.Merge(ctx, deploy(t0.Add(2*time.Minute), "1.4.1", "mark"))
	if late.ID != v1.ID || late.Attributes[SourcesAttr] != "github,mark" {
		t.Errorf("late report: %s %q, want %s github,mark", late.ID, late.Attributes[SourcesAttr], v1.ID)
	}
	// And a late report of the rollback merges into the rollback.
	late = m.Merge(ctx, deploy(t0.Add(21*time.Minute), "v1.4.1", "github"))
	if late.ID != back.ID || late.Kind != event.ChangeRollback {
		t.Errorf("late rollback report: %s %s, want %s rollback", late.ID, late.Kind, back.ID)
	}
}

func TestMergerOlderVersionIsARollback(t *testing.T) {
	m := NewMerger(MergerOptions{})
	ctx := context.Background()
	m.Merge(ctx, deploy(t0, "v1.10.0", "github"))
	out := m.Merge(ctx, deploy(t0.Add(time.Hour), "v1.9.3", "github"))
	if out.Kind != event.ChangeRollback || out.PreviousVersion != "v1.10.0" {
		t.Errorf("got kind %s previous %q", out.Kind, out.PreviousVersion)
	}
	out = m.Merge(ctx, deploy(t0.Add(2*time.Hour), "v1.11.0", "github"))
	if out.Kind != event.ChangeDeploy {
		t.Errorf("a newer version is a %s", out.Kind)
	}
}

func TestMergerWindow(t *testing.T) {
	m := NewMerger(MergerOptions{Window: time.Hour})
	ctx := context.Background()
	a := m.Merge(ctx, deploy(t0, "v2", "github"))
	b := m.Merge(ctx, deploy(t0.Add(59*time.Minute), "v2", "mark"))
	c := m.Merge(ctx, deploy(t0.Add(3*time.Hour), "v2", "argocd"))
	if b.ID != a.ID {
		t.Error("a report within the window did not merge")
	}
	if c.ID == a.ID || c.Attributes[SourcesAttr] != "argocd" {
		t.Errorf("a report beyond the window merged: %+v", c)
	}
}

func TestMergerPassesChangesWithoutIdentity(t *testing.T) {
	m := NewMerger(MergerOptions{})
	f := event.Change{ID: "x", Time: t0, Kind: event.ChangeFlag, Service: "api", Source: "launchdarkly",
		Attributes: map[string]string{"flag": "f", "new": "on"}}
	if out := m.Merge(context.Background(), f); out.ID != "x" || out.Attributes[SourcesAttr] != "" {
		t.Errorf("flag changed by the merger: %+v", out)
	}
}

// fakeReader is a store holding changes by id.
type fakeReader struct {
	mu    sync.Mutex
	byID  map[string]event.Change
	calls int
	err   error
}

func (r *fakeReader) ChangeByID(_ context.Context, id string) (event.Change, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.err != nil {
		return event.Change{}, false, r.err
	}
	c, ok := r.byID[id]
	return c, ok, nil
}

func TestMergerReadsBackAfterARestart(t *testing.T) {
	ctx := context.Background()
	before := NewMerger(MergerOptions{})
	before.Merge(ctx, deploy(t0, "v3", "github"))
	stored := before.Merge(ctx, deploy(t0.Add(time.Minute), "v3", "argocd"))

	r := &fakeReader{byID: map[string]event.Change{stored.ID: stored}}
	after := NewMerger(MergerOptions{Reader: r}) // a restart: empty cache
	out := after.Merge(ctx, deploy(t0.Add(2*time.Minute), "v3", "mark"))
	if out.ID != stored.ID || !out.Time.Equal(stored.Time) || out.Attributes[SourcesAttr] != "argocd,github,mark" {
		t.Errorf("after restart: %s %v %q; want %s %v argocd,github,mark", out.ID, out.Time, out.Attributes[SourcesAttr], stored.ID, stored.Time)
	}
	after.Merge(ctx, deploy(t0.Add(3*time.Minute), "v3", "github"))
	if r.calls != 1 {
		t.Errorf("%d reads, want 1 (the change is cached after the first)", r.calls)
	}
	if st := after.Stats(); st.ReadBack != 1 || st.Merged != 2 {
		t.Errorf("stats %+v", st)
	}

	// A stored change far in the past is an earlier deploy of the version:
	// the new report is a redeploy with an id of its own.
	old := stored
	old.Time = t0.Add(-72 * time.Hour)
	r2 := &fakeReader{byID: map[string]event.Change{old.ID: old}}
	out = NewMerger(MergerOptions{Reader: r2}).Merge(ctx, deploy(t0, "v3", "github"))
	if out.ID == old.ID {
		t.Error("a redeploy days later took the id of the old deploy")
	}

	// Without a stored change, the first report takes the identity id.
	out = NewMerger(MergerOptions{Reader: &fakeReader{}}).Merge(ctx, deploy(t0, "v4", "github"))
	if want := deploy(t0, "v4", ""); out.ID != IdentityID(&want) {
		t.Errorf("id %s, want %s", out.ID, IdentityID(&want))
	}
}

func TestMergerReadFailureWritesANewChange(t *testing.T) {
	m := NewMerger(MergerOptions{Reader: &fakeReader{err: errors.New("store down")}})
	out := m.Merge(context.Background(), deploy(t0, "v5", "github"))
	if want := deploy(t0, "v5", ""); out.ID != IdentityID(&want) {
		t.Errorf("id %s", out.ID)
	}
	if st := m.Stats(); st.ReadErrors != 1 || st.New != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestMergerEvictsLeastRecentlyUsedStreams(t *testing.T) {
	m := NewMerger(MergerOptions{Streams: 2})
	ctx := context.Background()
	for _, svc := range []string{"a", "b", "c"} {
		c := deploy(t0, "v1", "github")
		c.Service = svc
		m.Merge(ctx, c)
	}
	if m.lru.Len() != 2 || len(m.streams) != 2 {
		t.Fatalf("%d streams kept, want 2", m.lru.Len())
	}
	c := deploy(t0.Add(time.Minute), "v1", "mark")
	c.Service = "a" // evicted: starts anew
	if out := m.Merge(ctx, c); out.Attributes[SourcesAttr] != "mark" {
		t.Errorf("evicted stream still merged: %q", out.Attributes[SourcesAttr])
	}
}

func TestMergerConcurrentReports(t *testing.T) {
	r := &fakeReader{byID: map[string]event.Change{}}
	m := NewMerger(MergerOptions{Reader: r})
	var wg sync.WaitGroup
	ids := make([]string, 50)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := m.Merge(context.Background(), deploy(t0.Add(time.Duration(i)*time.Second), "v9", fmt.Sprint("s", i%5)))
			ids[i] = out.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent reports of one deploy got ids %s and %s", ids[0], id)
		}
	}
	last := m.Merge(context.Background(), deploy(t0, "v9", "s0"))
	if last.Attributes[SourcesAttr] != "s0,s1,s2,s3,s4" {
		t.Errorf("sources %q", last.Attributes[SourcesAttr])
	}
}

type recordingWriter struct {
	batches []event.Batch
	err     error
}

func (w *recordingWriter) Add(_ context.Context, b *event.Batch) error {
	w.batches = append(w.batches, *b)
	return w.err
}

func (w *recordingWriter) Err() error { return w.err }

func TestMergingWriter(t *testing.T) {
	next := &recordingWriter{}
	w := NewMergingWriter(NewMerger(MergerOptions{}), next)
	gh, argo := deploy(t0, "v1", "github"), deploy(t0.Add(time.Second), "v1", "argocd")
	AssignID(&gh)
	imported := deploy(t0, "v1", "import")
	imported.ID = "scenario-change-7" // an explicit id: left alone
	in := event.Batch{Changes: []event.Change{gh, imported, argo}, Errors: []event.ErrorEvent{{ID: "e"}}}
	if err := w.Add(context.Background(), &in); err != nil {
		t.Fatal(err)
	}
	got := next.batches[0]
	if len(got.Changes) != 2 || len(got.Errors) != 1 {
		t.Fatalf("wrote %d changes and %d errors, want 2 and 1", len(got.Changes), len(got.Errors))
	}
	if got.Changes[0].ID != gh.ID || got.Changes[0].Attributes[SourcesAttr] != "argocd,github" {
		t.Errorf("merged change %+v", got.Changes[0])
	}
	if got.Changes[1].ID != "scenario-change-7" || got.Changes[1].Attributes != nil {
		t.Errorf("explicit id rewritten: %+v", got.Changes[1])
	}
	if in.Changes[0].Attributes != nil {
		t.Error("the caller's batch was modified")
	}
	next.err = errors.New("flush failed")
	if w.Err() == nil {
		t.Error("Err does not pass the next writer's through")
	}
}
