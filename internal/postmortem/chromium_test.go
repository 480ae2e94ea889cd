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
// page's.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
		"--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--metrics-recording-only", "--hide-scrollbars", "--virtual-time-budget=3000"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// The HTML bundle of the demo incident, opened in headless Chromium from
// a local server: it renders every section, draws the charts, and asks
// the server for nothing but the page.
func TestChromiumRendersBundle(t *testing.T) {
	bin := requireChromium(t)
	d := loadDemo(t)
	b := demoBundle(t, d, postmortem.Options{GrafanaURL: "https://grafana.example.com"})
	var page bytes.Buffer
	if err := postmortem.HTML(&page, b, postmortem.RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.URL.Path)
		mu.Unlock()
		if r.URL.Path != "/index.html" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page.Bytes())
	}))
	defer srv.Close()

	dom := string(runChromium(t, bin, "--dump-dom", srv.URL+"/index.html"))
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

	shot := filepath.Join(t.TempDir(), "shot.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,1900", srv.URL+"/index.html")
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
		if p != "/index.html" {
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
