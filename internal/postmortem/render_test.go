package postmortem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/correlator/correlator/internal/postmortem"
	"github.com/correlator/correlator/internal/store"
)

func buildFake(t *testing.T, st *fakeStore, opt postmortem.Options) *postmortem.Bundle {
	t.Helper()
	if opt.Now == nil {
		opt.Now = func() time.Time { return ft0.Add(2 * time.Hour) }
	}
	b, err := postmortem.NewBuilder(st, opt).Build(context.Background(), "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The timeline comes from the incident's states: what each one changed.
func TestTimelineFromHistory(t *testing.T) {
	alert := map[string]string{"alertmanager.group_key": "{}:{a=\"b\"}", "alertname": "HighErrors", "alertmanager.receiver": "oncall"}
	base := store.Incident{ID: "inc-1", Title: "t", Status: "open", Services: []string{"api"}, OpenedAt: ft0, UpdatedAt: ft0.Add(time.Second)}
	with := func(in store.Incident, f func(*store.Incident)) store.Incident {
		f(&in)
		return in
	}
	byAlert := with(base, func(in *store.Incident) { in.Attributes = alert; in.Onset = ft0 })
	tests := []struct {
		name string
		hist []store.Incident
		want []string // kind: text prefix
	}{
		{"declared, resolved without a cause", []store.Incident{
			with(base, func(in *store.Incident) { in.Onset = ft0.Add(-3 * time.Minute) }),
			with(base, func(in *store.Incident) {
				in.Onset = ft0.Add(-3 * time.Minute)
				in.Status, in.ResolvedAt, in.UpdatedAt = "resolved", ft0.Add(time.Hour), ft0.Add(time.Hour)
				in.Attributes = map[string]string{"cause": "none"}
			}),
		}, []string{"onset: Symptom onset (as recorded", "opened: Incident opened: t", "resolution: Resolved; no change was the cause"}},
		{"opened by an alert, joined, severity, actions", []store.Incident{
			byAlert,
			with(byAlert, func(in *store.Incident) { in.Services = []string{"api", "db"}; in.UpdatedAt = ft0.Add(time.Minute) }),
			with(byAlert, func(in *store.Incident) {
				in.Services, in.Severity, in.UpdatedAt = []string{"api", "db"}, "critical", ft0.Add(2*time.Minute)
			}),
			with(byAlert, func(in *store.Incident) {
				in.Services, in.Severity, in.UpdatedAt, in.Note = []string{"api", "db"}, "critical", ft0.Add(3*time.Minute), "rolled back api to v41"
			}),
			with(byAlert, func(in *store.Incident) {
				in.Services, in.Severity, in.Status, in.ResolvedAt, in.UpdatedAt = []string{"api", "db"}, "critical", "resolved", ft0.Add(9*time.Minute), ft0.Add(9*time.Minute)
				in.Attributes = map[string]string{"cause": "chg-9"}
			}),
		}, []string{
			"alert: Alert HighErrors fired on api (Alertmanager receiver oncall)", "opened: Incident opened: t",
			"alert: Alert group joined by db", "update: Severity set to critical", "action: rolled back api to v41",
			"resolution: Resolved; confirmed cause chg-9",
		}},
		{"where the post-mortem went is not an action; a cause confirmed later is", []store.Incident{
			base,
			with(base, func(in *store.Incident) {
				in.Status, in.ResolvedAt, in.UpdatedAt = "resolved", ft0.Add(time.Hour), ft0.Add(time.Hour)
				in.Attributes = map[string]string{"cause": "none"}
			}),
			with(base, func(in *store.Incident) {
				in.Status, in.ResolvedAt, in.UpdatedAt, in.Note = "resolved", ft0.Add(time.Hour), ft0.Add(time.Hour+time.Second), "post-mortem bundle attached"
				in.Attributes = map[string]string{"cause": "none", "postmortem.url": "https://pm/1"}
			}),
			with(base, func(in *store.Incident) {
				in.Status, in.ResolvedAt, in.UpdatedAt, in.Note = "resolved", ft0.Add(time.Hour), ft0.Add(2*time.Hour), "cause confirmed after review"
				in.Attributes = map[string]string{"cause": "chg-2", "postmortem.url": "https://pm/1"}
			}),
		}, []string{"opened: Incident opened: t", "resolution: Resolved; no change was the cause", "action: cause confirmed after review"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := buildFake(t, &fakeStore{hist: tt.hist}, postmortem.Options{})
			var got []string
			for _, e := range b.Timeline {
				got = append(got, e.Kind+": "+e.Text)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("entry %d = %q, want %q…", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// Text from telemetry cannot inject markup, links or script into any
// format, and the JSON round-trips.
func TestRenderNeutralisesTelemetry(t *testing.T) {
	b := buildFake(t, fakeIncident(), postmortem.Options{GrafanaURL: "https://g.example"})
	if len(b.NewErrors) != 1 || len(b.NewErrors[0].Frames) != 2 {
		t.Fatalf("new errors = %+v, want fp1 with its frames", b.NewErrors)
	}
	for _, format := range postmortem.Formats {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := postmortem.Render(&buf, b, format, postmortem.RenderOptions{}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			switch format {
			case postmortem.FormatJSON:
				var back postmortem.Bundle
				if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(roundTrip(t, *b), back) {
					t.Error("the JSON does not decode to the bundle")
				}
			case postmortem.FormatHTML:
				if strings.Contains(out, "<script") || strings.Contains(out, `href="javascript`) {
					t.Errorf("HTML carries the telemetry's markup or link")
				}
			case postmortem.FormatMarkdown:
				// Outside code blocks (where text is literal) no tag or
				// link of the telemetry's survives.
				prose := withoutFences(out)
				if strings.Contains(prose, "<script") || mdLink.MatchString(prose) {
					t.Errorf("Markdown carries the telemetry's markup or link:\n%s", prose)
				}
				// The log line's ``` cannot close its fence: a longer one is used.
				if !strings.Contains(out, "````text\n") {
					t.Error("no longer fence around a log line containing ```")
				}
				// Table rows keep their columns: pipes in text are escaped.
				for _, line := range strings.Split(out, "\n") {
					if strings.HasPrefix(line, "| 2026-04-01") && strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 5 {
						t.Errorf("timeline row with broken columns: %s", line)
					}
				}
			}
		})
	}
	if _, err := b.Charts[0].SVG(); err != nil {
		t.Fatal(err)
	}
}

func TestRenderRejectsUnknownFormat(t *testing.T) {
	err := postmortem.Render(&bytes.Buffer{}, &postmortem.Bundle{}, "pdf", postmortem.RenderOptions{})
	if err == nil || !strings.Contains(err.Error(), `"pdf"`) {
		t.Errorf("err = %v, want one naming pdf", err)
	}
}

// Chart labels come from telemetry; the SVG escapes them, the PNG draws.
func TestChartSVGEscapesLabels(t *testing.T) {
	c := postmortem.Chart{ID: "x", Title: "Errors", Unit: "n", From: ft0, To: ft0.Add(time.Hour),
		Series:  []postmortem.Series{{Name: "<svc>&", Points: []postmortem.Point{{T: ft0, V: 1}, {T: ft0.Add(time.Minute), V: 3}}}},
		Markers: []postmortem.Marker{{Time: ft0.Add(30 * time.Second), Label: "deploy </text><script>x</script>"}}}
	svg, err := c.SVG()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(svg, []byte("<script")) || !bytes.Contains(svg, []byte("&lt;/text&gt;")) {
		t.Errorf("label not escaped in SVG:\n%s", svg)
	}
	if err := xmlWellFormed(svg); err != nil {
		t.Errorf("SVG not well-formed: %v", err)
	}
	png, err := c.PNG()
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("PNG: %v, %q…", err, png[:min(8, len(png))])
	}
	// No data: still a chart, saying so.
	empty := postmortem.Chart{ID: "e", Title: "Latency", From: ft0, To: ft0.Add(time.Hour)}
	if svg, err := empty.SVG(); err != nil || !bytes.Contains(svg, []byte("no data")) {
		t.Errorf("empty chart: %v\n%s", err, svg)
	}
}

// The HTML loads nothing: no src, no stylesheet, no CSS url(); its only
// links are anchors, Grafana's dashboards and the changes' own pages.
func TestHTMLSelfContained(t *testing.T) {
	d := loadDemo(t)
	b := demoBundle(t, d, postmortem.Options{GrafanaURL: "https://grafana.example.com"})
	for _, refresh := range []time.Duration{0, 15 * time.Second} {
		var buf bytes.Buffer
		if err := postmortem.HTML(&buf, b, postmortem.RenderOptions{Refresh: refresh}); err != nil {
			t.Fatal(err)
		}
		allowed := map[string]bool{}
		for _, e := range b.Timeline {
			allowed[e.URL] = true
		}
		doc, err := html.Parse(&buf)
		if err != nil {
			t.Fatal(err)
		}
		var metaRefresh string
		sections := map[string]bool{}
		walk(doc, func(n *html.Node) {
			for _, a := range n.Attr {
				switch {
				case a.Key == "src" || a.Key == "srcset" || a.Key == "xlink:href" || a.Key == "poster":
					t.Errorf("<%s %s=%q> loads a resource", n.Data, a.Key, a.Val)
				case a.Key == "href" && n.Data == "link" && a.Val != "data:,":
					t.Errorf("<link href=%q> loads a resource", a.Val)
				case a.Key == "href" && n.Data == "a" && !strings.HasPrefix(a.Val, "#") &&
					!strings.HasPrefix(a.Val, "https://grafana.example.com/d/") && !allowed[a.Val]:
					t.Errorf("<a href=%q> is neither an anchor, a dashboard nor a change's page", a.Val)
				case a.Key == "style" && strings.Contains(a.Val, "url("):
					t.Errorf("<%s style=%q> loads a resource", n.Data, a.Val)
				case a.Key == "id" && n.Data == "section":
					sections[a.Val] = true
				case a.Key == "http-equiv" && a.Val == "refresh":
					for _, c := range n.Attr {
						if c.Key == "content" {
							metaRefresh = c.Val
						}
					}
				}
			}
			if n.Data == "style" && n.FirstChild != nil && (strings.Contains(n.FirstChild.Data, "url(") || strings.Contains(n.FirstChild.Data, "@import")) {
				t.Error("<style> loads a resource")
			}
		})
		for _, s := range []string{"summary", "impact", "timeline", "causes", "new-errors", "logs", "charts", "dashboards", "contributing-factors", "went-well", "action-items", "queries"} {
			if !sections[s] {
				t.Errorf("no section %q", s)
			}
		}
		if want := map[time.Duration]string{0: "", 15 * time.Second: "15"}[refresh]; metaRefresh != want {
			t.Errorf("refresh %s: meta refresh %q, want %q", refresh, metaRefresh, want)
		}
	}
}

func walk(n *html.Node, f func(*html.Node)) {
	if n.Type == html.ElementNode {
		f(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

var (
	mdLink = regexp.MustCompile(`(^|[^\\])\]\(javascript:`)
)

// withoutFences drops the fenced code blocks of a Markdown text.
func withoutFences(md string) string {
	var out []string
	fence := ""
	for _, line := range strings.Split(md, "\n") {
		switch {
		case fence == "" && strings.HasPrefix(line, "```"):
			fence = line[:len(line)-len(strings.TrimLeft(line, "`"))]
		case fence != "" && line == fence:
			fence = ""
		case fence == "":
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func xmlWellFormed(b []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
