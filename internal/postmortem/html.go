package postmortem

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/impact"
)

//go:embed bundle.html.tmpl
var htmlSource string

// htmlTemplate renders the self-contained page: inline CSS, inline SVG
// charts, no script and nothing loaded from elsewhere, so it can be mailed,
// attached or opened offline. Links (Grafana, the changes' own pages) are
// the only external URLs, and only as anchors.
var htmlTemplate = template.Must(template.New("bundle").Funcs(template.FuncMap{
	"t":      func(t time.Time) string { return t.UTC().Format(tfmt) },
	"hm":     func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"dur":    func(d Duration) string { return humanDuration(time.Duration(d)) },
	"pct":    func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"n0":     func(f float64) string { return fmt.Sprintf("%.0f", f) },
	"f2":     func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"join":   strings.Join,
	"label":  changeLabel,
	"trunc":  truncate,
	"safe":   safeURL,
	"orNone": orNone,
	"rerun":  rerunCommand,
	"params": paramLines,
	"top":    func(n int, cs []impact.Customer) []impact.Customer { return cs[:min(n, len(cs))] },
	"same":   func(a, b *Known) bool { return a != nil && b != nil && a.TakenAt.Equal(b.TakenAt) },
	"first5": func(k *Known) any {
		if k == nil || k.Answer == nil {
			return nil
		}
		return k.Answer.Candidates[:min(5, len(k.Answer.Candidates))]
	},
}).Parse(htmlSource))

// htmlPage is what the template sees.
type htmlPage struct {
	*Bundle
	Refresh int // seconds; 0 for none
	Charts  []htmlChart
}

type htmlChart struct {
	Chart
	SVG template.HTML
}

// HTML writes the bundle as one self-contained HTML page with the charts
// inline as SVG.
func HTML(w io.Writer, b *Bundle, opt RenderOptions) error {
	p := htmlPage{Bundle: b}
	if opt.Refresh > 0 {
		p.Refresh = max(1, int(opt.Refresh.Seconds()))
	}
	for _, c := range b.Charts {
		svg, err := c.SVG()
		if err != nil {
			return err
		}
		// The SVG is go-chart's output with every text from telemetry
		// escaped (Chart.SVG): trusted markup.
		p.Charts = append(p.Charts, htmlChart{Chart: c, SVG: template.HTML(svg)})
	}
	return htmlTemplate.Execute(w, p)
}
