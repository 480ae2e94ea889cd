package postmortem

import (
	"bytes"
	"fmt"
	"html"
	"time"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
)

// palette colours the services' lines; markers are grey, the incident's
// span a pale red.
var palette = []drawing.Color{
	{R: 31, G: 119, B: 180, A: 255}, {R: 255, G: 127, B: 14, A: 255}, {R: 44, G: 160, B: 44, A: 255},
	{R: 148, G: 103, B: 189, A: 255}, {R: 140, G: 86, B: 75, A: 255}, {R: 23, G: 190, B: 207, A: 255},
}

var (
	markerColor = drawing.Color{R: 90, G: 90, B: 90, A: 255}
	shadeColor  = drawing.Color{R: 214, G: 39, B: 40, A: 40}
)

// Chart sizes, in pixels.
const (
	chartWidth  = 960
	chartHeight = 320
)

// SVG draws the chart as an SVG document, fit to be inlined in HTML.
func (c Chart) SVG() ([]byte, error) {
	// go-chart writes text into the SVG as it is: labels from telemetry
	// (service names, versions) are escaped here.
	return c.render(chart.SVG, html.EscapeString)
}

// PNG draws the chart as a PNG image, for chat tools that show no SVG.
func (c Chart) PNG() ([]byte, error) {
	return c.render(chart.PNG, func(s string) string { return s })
}

func (c Chart) render(rp chart.RendererProvider, text func(string) string) ([]byte, error) {
	var series, legend []chart.Series
	var names []string
	ymax := 0.0
	for i, s := range c.Series {
		if len(s.Points) == 0 {
			continue
		}
		ts := chart.TimeSeries{Name: text(s.Name), Style: chart.Style{StrokeColor: palette[i%len(palette)], StrokeWidth: 2}}
		for _, p := range s.Points {
			ts.XValues = append(ts.XValues, p.T)
			ts.YValues = append(ts.YValues, p.V)
			ymax = max(ymax, p.V)
		}
		series = append(series, ts)
		legend = append(legend, ts)
		names = append(names, s.Name)
	}
	if len(series) == 0 {
		return c.empty(rp, text)
	}
	if ymax <= 0 {
		ymax = 1
	}
	top := ymax * 1.3
	// The incident's span, filled from the top of the range down to 0.
	if !c.Shade[0].IsZero() && c.Shade[1].After(c.Shade[0]) {
		from, to := maxTime(c.Shade[0], c.From), minTime(c.Shade[1], c.To)
		if to.After(from) {
			series = append([]chart.Series{chart.TimeSeries{
				Style:   chart.Style{StrokeWidth: 0, StrokeColor: shadeColor, FillColor: shadeColor},
				XValues: []time.Time{from, to}, YValues: []float64{top, top},
			}}, series...)
		}
	}
	var notes []chart.Value2
	for i, m := range c.Markers {
		// Labels of changes close together would overlap: successive
		// markers (in time order) take three heights in turn.
		y := ymax * (1.15 - 0.12*float64(i%3))
		series = append(series, chart.TimeSeries{
			Style:   chart.Style{StrokeColor: markerColor, StrokeWidth: 1, StrokeDashArray: []float64{4, 3}},
			XValues: []time.Time{m.Time, m.Time}, YValues: []float64{0, y},
		})
		notes = append(notes, chart.Value2{XValue: chart.TimeToFloat64(m.Time), YValue: y, Label: text(m.Label)})
	}
	if len(notes) > 0 {
		series = append(series, chart.AnnotationSeries{Annotations: notes,
			Style: chart.Style{FontSize: 7, StrokeColor: markerColor, FillColor: drawing.ColorWhite}})
	}
	g := chart.Chart{
		Title:      text(c.Title + " (" + c.Unit + ")"),
		Width:      chartWidth,
		Height:     chartHeight,
		Background: chart.Style{Padding: chart.Box{Top: 64, Left: 10, Right: 20, Bottom: 10}},
		XAxis: chart.XAxis{
			ValueFormatter: func(v any) string { return chart.TimeFromFloat64(v.(float64)).UTC().Format("15:04") },
			Range:          &chart.ContinuousRange{Min: chart.TimeToFloat64(c.From), Max: chart.TimeToFloat64(c.To)},
		},
		YAxis:  chart.YAxis{Range: &chart.ContinuousRange{Min: 0, Max: top}},
		Series: series,
	}
	// A legend sits in the top padding, where the title is: one series is
	// named in the title instead, several get a taller padding.
	if len(legend) == 1 {
		g.Title = text(c.Title + " of " + names[0] + " (" + c.Unit + ")")
		g.Background.Padding.Top = 48
	} else {
		lg := chart.Chart{Series: legend}
		g.Elements = []chart.Renderable{chart.LegendThin(&lg)}
		g.Background.Padding.Top = 96
	}
	var buf bytes.Buffer
	if err := g.Render(rp, &buf); err != nil {
		return nil, fmt.Errorf("render chart %s: %w", c.ID, err)
	}
	return buf.Bytes(), nil
}

// empty draws a chart that says there is no data, so that a bundle keeps
// its shape when a metric is not collected.
func (c Chart) empty(rp chart.RendererProvider, text func(string) string) ([]byte, error) {
	g := chart.Chart{
		Title: text(c.Title + ": no data in range"), Width: chartWidth, Height: chartHeight / 2,
		XAxis: chart.XAxis{ValueFormatter: func(v any) string { return chart.TimeFromFloat64(v.(float64)).UTC().Format("15:04") }},
		YAxis: chart.YAxis{Range: &chart.ContinuousRange{Min: 0, Max: 1}},
		Series: []chart.Series{chart.TimeSeries{Style: chart.Style{StrokeColor: markerColor, StrokeWidth: 1},
			XValues: []time.Time{c.From, c.To}, YValues: []float64{0, 0}}},
	}
	var buf bytes.Buffer
	if err := g.Render(rp, &buf); err != nil {
		return nil, fmt.Errorf("render chart %s: %w", c.ID, err)
	}
	return buf.Bytes(), nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
