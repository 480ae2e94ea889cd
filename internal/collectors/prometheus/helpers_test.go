package prometheus

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// memWriter is an in-memory Writer that fails the test on a point written
// twice (same PointID).
type memWriter struct {
	t   *testing.T
	mu  sync.Mutex // mu guards the fields below.
	pts []event.MetricPoint
	ids map[string]bool
	err error // err, when set, fails Add without keeping anything.
}

func newMemWriter(t *testing.T) *memWriter { return &memWriter{t: t, ids: map[string]bool{}} }

func (w *memWriter) Add(_ context.Context, b *event.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	for _, p := range b.Metrics {
		id := PointID(p)
		if w.ids[id] {
			w.t.Errorf("point written twice: %s %s %v at %s", p.Service, p.Name, p.Labels, p.Time.Format(time.RFC3339))
		}
		w.ids[id] = true
		w.pts = append(w.pts, p)
	}
	return nil
}

func (w *memWriter) points() []event.MetricPoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.pts)
}

// byName selects the points of one metric (and, if version is not "", of
// one version), sorted by time.
func byName(pts []event.MetricPoint, service, name, version string) []event.MetricPoint {
	var out []event.MetricPoint
	for _, p := range pts {
		if p.Service == service && p.Name == name && (version == "" || p.Labels["version"] == version) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// requireBinary returns the path of an installed binary, or skips the test
// (fails it when CORRELATOR_REQUIRE_PROMETHEUS=1, as CI sets after
// installing the Debian packages).
func requireBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/bin", name); fileExists(p) {
		return p
	}
	msg := fmt.Sprintf("%s is not installed (apt-get install -y prometheus prometheus-alertmanager); "+
		"set CORRELATOR_REQUIRE_PROMETHEUS=1 to make this a failure", name)
	if os.Getenv("CORRELATOR_REQUIRE_PROMETHEUS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess runs a server binary until the test ends, with its output in
// a file that is printed when the test fails.
func startProcess(t *testing.T, dir, bin string, args ...string) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s output (tail):\n%s", filepath.Base(bin), b)
		}
	})
}

// waitHTTP polls url until it answers 200 or the deadline passes.
func waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s (last error %v)", url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
