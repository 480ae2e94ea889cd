package postmortem_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/postmortem"
)

var screenshot = flag.Bool("screenshot", false, "rewrite docs/postmortem-screenshot.png from the demo incident")

// requireChromium returns Debian's chromium, or skips the test (fails it
// when CORRELATOR_REQUIRE_CHROMIUM=1, as CI sets after installing it).
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed (apt-get install -y chromium); set CORRELATOR_REQUIRE_CHROMIUM=1 to make this a failure"
	if os.Getenv("CORRELATOR_REQUIRE_CHROMIUM") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// runChromium runs headless Chromium with a throwaway profile and no
// background traffic of its own, so that every request it makes is the
// page's. It returns the output and the browser's log, where the page's
// console messages (Content Security Policy violations among them) go.
func runChromium(t *testing.T, bin string, args ...string) ([]byte, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
		"--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--metrics-recording-only", "--hide-scrollbars", "--virtual-time-budget=3000",
		"--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out, stderr.String()
}

// The live page of the demo incident, opened in headless Chromium from
// the Handler (so with its headers, the Content Security Policy among
// them): it renders every section, draws the charts, asks the server for
// nothing but the page, and breaks none of its own policy.
func TestChromiumRendersBundle(t *testing.T) {
	bin := requireChromium(t)
	d := loadDemo(t)
	opt := postmortem.Options{GrafanaURL: "https://grafana.example.com"}
	b := demoBundle(t, d, opt)
	opt.Now = func() time.Time { return d.resolved.Add(time.Hour) }
	h := postmortem.NewHandler(postmortem.NewBuilder(d.st, opt), 0, nil)
	page := "/incidents/" + d.id
	var mu sync.Mutex
	var requests []string
	mux := http.NewServeMux()
	mux.Handle("GET /incidents/{id}", h.Live())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.URL.Path)
		mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()

	out, log := runChromium(t, bin, "--dump-dom", srv.URL+page)
	dom := string(out)
	for _, id := range []string{"summary", "impact", "charts", "timeline", "causes", "new-errors", "logs", "dashboards", "contributing-factors", "went-well", "action-items", "queries"} {
		if !strings.Contains(dom, `<section id="`+id+`">`) {
			t.Errorf("rendered DOM lacks section %q", id)
		}
	}
	svgs := regexp.MustCompile(`(?s)<svg[^>]*>(.*?)</svg>`).FindAllStringSubmatch(dom, -1)
	if len(svgs) != len(b.Charts) || len(svgs) == 0 {
		t.Errorf("%d svg elements, want %d charts", len(svgs), len(b.Charts))
	}
	for i, s := range svgs {
		if n := strings.Count(s[1], "<path"); n < 5 {
			t.Errorf("chart %d has %d paths: not drawn", i, n)
		}
	}
	if !strings.Contains(dom, d.sc.ExpectedCause) {
		t.Error("the cause is not on the rendered page")
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "Content Security Policy") {
			t.Errorf("the page breaks its own policy: %s", line)
		}
	}

	shot := filepath.Join(t.TempDir(), "shot.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,1900", srv.URL+page)
	f, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(f))
	if err != nil || img.Bounds().Dx() != 1280 {
		t.Fatalf("screenshot: %v, %v", err, img.Bounds())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range requests {
		if p != page {
			t.Errorf("the page requested %s: a reference that is not inline", p)
		}
	}
	if *screenshot {
		out := filepath.Join("..", "..", "docs", "postmortem-screenshot.png")
		if err := os.WriteFile(out, f, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(os.Stderr, "wrote", out)
	}
}
