package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/correlator/correlator/internal/collectors/changes"
)

// cmdMark records a change on a running server, for scripts and CI
// pipelines: correlator mark deploy|flag|config|rollback --service S ....
func cmdMark(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, "usage: correlator mark deploy|flag|config|rollback --service S [--version V] [flags]; 'correlator mark deploy -h' lists the flags")
		return exitError{2}
	}
	kind, rest := args[0], args[1:]
	fs := flag.NewFlagSet("mark "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf changes.MarkFlags
	mf.Register(fs)
	server := fs.String("server", envOr("CORRELATOR_SERVER", "http://127.0.0.1:8080"), "correlator server base URL (default $CORRELATOR_SERVER)")
	token := fs.String("token", "", "API token with the ingest scope (default $CORRELATOR_TOKEN; prefer the variable, a flag shows in ps)")
	asJSON := fs.Bool("json", false, "print the recorded change as JSON")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if *token == "" {
		*token = os.Getenv("CORRELATOR_TOKEN")
	}
	c, err := mf.Change(kind, time.Now())
	if err != nil {
		return err
	}
	if err := changes.Mark(ctx, nil, *server, *token, c); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	}
	fmt.Fprintf(stdout, "marked %s %s of %s at %s (id %s)\n", c.Kind, c.Version, c.Service, c.Time.Format(time.RFC3339), c.ID)
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
