package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/correlator/correlator/internal/postmortem"
)

// postmortemUsage is the command line of correlator postmortem.
const postmortemUsage = "correlator postmortem INCIDENT [--format md|json|html] [--out DIR] [--grafana-url URL]"

// cmdPostmortem prints or writes the post-mortem evidence bundle of an
// incident. Flags may come before or after the incident.
func cmdPostmortem(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postmortem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: "+postmortemUsage)
		fs.PrintDefaults()
	}
	var sf storeFlags
	sf.register(fs)
	format := fs.String("format", postmortem.FormatMarkdown, "output: "+strings.Join(postmortem.Formats, ", "))
	out := fs.String("out", "", "write DIR/index.<format> and the charts (SVG and PNG) instead of printing")
	grafana := fs.String("grafana-url", "", "Grafana base URL for the dashboard links (default grafana.url of the configuration)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return errors.New("missing INCIDENT (usage: " + postmortemUsage + ")")
	case len(pos) > 1:
		return fmt.Errorf("unexpected argument %q (flags start with -; see correlator postmortem -h)", pos[1])
	case !slices.Contains(postmortem.Formats, *format):
		return fmt.Errorf("flag --format: unknown format %q (want %s)", *format, strings.Join(postmortem.Formats, ", "))
	}
	id := pos[0]
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	grafanaURL := cfg.Grafana.URL
	if *grafana != "" {
		u, err := url.Parse(*grafana)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("flag --grafana-url: want an http(s) URL, such as https://grafana.example.com")
		}
		grafanaURL = *grafana
	}
	st, err := openStore(ctx, cfg, cliLogger(stderr, cfg), nil)
	if err != nil {
		return err
	}
	defer st.Close()
	b, err := postmortem.NewBuilder(st, postmortem.Options{GrafanaURL: grafanaURL}).Build(ctx, id)
	if err != nil {
		return err
	}
	if *out == "" {
		return postmortem.Render(stdout, b, *format, postmortem.RenderOptions{})
	}
	paths, err := postmortem.WriteDir(*out, b, *format)
	if err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintln(stdout, p)
	}
	return nil
}
