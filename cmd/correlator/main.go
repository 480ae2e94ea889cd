// Command correlator answers "what changed?" during an incident: it keeps
// changes, errors, logs and metrics in ClickHouse and ranks the changes
// that likely caused the symptoms. Run `correlator help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/chdb"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `correlator: what changed? Ranks the changes behind an incident.

Usage: correlator COMMAND [flags]

Commands:
  serve        run the HTTP API (ingest, what changed?, impact, /metrics)
  whatchanged  rank the changes that may explain a service's symptoms
  impact       estimate the users and customers an incident hurt (--customers --format csv exports them)
  incident     open, update, resolve, list and show incidents (snapshots of causes and impact kept)
  accuracy     how the ranking did on resolved incidents with a confirmed cause (top-1, top-3, abstain)
  import       load NDJSON files (changes, errors, logs, metrics, services)
  mark         record a deploy, flag or config change on a running server (for CI)
  demo         generate a synthetic production with one incident and answer it
  eval         score the engine and the baseline on generated incidents (--fit refits the model)
  postmortem   an incident's post-mortem evidence bundle (INCIDENT --format md|json|html --out DIR)
  migrate      create or update the ClickHouse schema (--print shows the DDL)
  check-config validate the configuration and print it with secrets hidden
  version      print the version

Every command that touches the store takes --data-dir DIR (embedded
ClickHouse, the default) or --clickhouse DSN (a server). Run
'correlator COMMAND -h' for a command's flags.
`

// exitError carries an exit code; its message has already been printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = cmdServe(ctx, rest, stdout, stderr)
	case "whatchanged", "what-changed":
		err = cmdWhatChanged(ctx, rest, stdout, stderr)
	case "impact":
		err = cmdImpact(ctx, rest, stdout, stderr)
	case "incident", "incidents":
		err = cmdIncident(ctx, rest, stdout, stderr)
	case "accuracy":
		err = cmdAccuracy(ctx, rest, stdout, stderr)
	case "import":
		err = cmdImport(ctx, rest, stdout, stderr)
	case "mark":
		err = cmdMark(ctx, rest, stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, rest, stdout, stderr)
	case "eval":
		err = cmdEval(ctx, rest, stdout, stderr)
	case "postmortem", "post-mortem":
		err = cmdPostmortem(ctx, rest, stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, rest, stdout, stderr)
	case "check-config":
		err = cmdCheckConfig(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "correlator", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "correlator: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "correlator "+cmd+":", err)
		return 1
	}
	return 0
}

// storeFlags are the flags of every command that opens the store; they
// override the config file and the environment.
type storeFlags struct {
	configPath string
	dataDir    string
	dsn        string
	cluster    string
	chdbLib    string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.configPath, "config", "", "YAML configuration file")
	fs.StringVar(&f.dataDir, "data-dir", "", "embedded store directory (default $XDG_DATA_HOME/correlator)")
	fs.StringVar(&f.dsn, "clickhouse", "", "ClickHouse server DSN, e.g. clickhouse://user:pass@host:9000/db (default: embedded store)")
	fs.StringVar(&f.cluster, "cluster", "", "ClickHouse cluster for ON CLUSTER migrations")
	fs.StringVar(&f.chdbLib, "chdb-lib", "", "path of libchdb.so (default $CORRELATOR_CHDB_LIB or the make-installed copy)")
}

// load builds the configuration: defaults, file, environment, flags, then
// validation.
func (f *storeFlags) load() (config.Config, error) {
	cfg, err := config.Load(f.configPath)
	if err != nil {
		return cfg, err
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return cfg, err
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
	}
	if f.dsn != "" {
		cfg.ClickHouse.DSN = config.Secret(f.dsn)
	}
	if f.cluster != "" {
		cfg.ClickHouse.Cluster = f.cluster
	}
	if f.chdbLib != "" {
		cfg.ChDBLib = f.chdbLib
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// openStore opens (and migrates) the store the configuration names.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, metrics *store.Metrics) (*store.Store, error) {
	return store.Open(ctx, cfg.ClickHouse.DSN.Reveal(), cfg.DataDir,
		store.Options{Database: cfg.ClickHouse.Database, Cluster: cfg.ClickHouse.Cluster, LogsTable: cfg.ClickHouse.LogsTable, Logger: log, Metrics: metrics},
		chdb.Options{Lib: cfg.ChDBLib, Logger: log})
}

func cliLogger(stderr io.Writer, cfg config.Config) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}))
}

// parseFlags parses a command that takes no positional arguments, and
// refuses stray ones: flag.Parse stops at the first, so `whatchanged
// --service a extra --json` would otherwise ignore --json silently.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -; see correlator %s -h)", fs.Arg(0), fs.Name())
	}
	return nil
}
