package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/correlator/correlator/internal/postmortem"
)

// cmdPostmortem prints or writes the post-mortem evidence bundle of an
// incident: correlator postmortem INCIDENT [--format md|json|html] [--out DIR].
func cmdPostmortem(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("postmortem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: correlator postmortem INCIDENT [--format md|json|html] [--out DIR]")
		fs.PrintDefaults()
	}
	var sf storeFlags
	sf.register(fs)
	format := fs.String("format", postmortem.FormatMarkdown, "output: "+strings.Join(postmortem.Formats, ", "))
	out := fs.String("out", "", "write DIR/index.<format> and the charts (SVG and PNG) instead of printing")
	grafana := fs.String("grafana-url", os.Getenv("CORRELATOR_GRAFANA_URL"), "Grafana base URL for the dashboard links (default $CORRELATOR_GRAFANA_URL)")
	// The incident may come before or after the flags.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if id == "" && len(rest) > 0 {
		id, rest = rest[0], rest[1:]
	}
	switch {
	case id == "":
		return errors.New("missing INCIDENT (usage: correlator postmortem INCIDENT [--format md|json|html] [--out DIR])")
	case len(rest) > 0:
		return fmt.Errorf("unexpected argument %q (flags start with -; see correlator postmortem -h)", rest[0])
	case !slices.Contains(postmortem.Formats, *format):
		return fmt.Errorf("flag --format: unknown format %q (want %s)", *format, strings.Join(postmortem.Formats, ", "))
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, cliLogger(stderr, cfg), nil)
	if err != nil {
		return err
	}
	defer st.Close()
	b, err := postmortem.NewBuilder(st, postmortem.Options{GrafanaURL: *grafana}).Build(ctx, id)
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
