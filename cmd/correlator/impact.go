package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/correlator/correlator/internal/api"
	"github.com/correlator/correlator/internal/impact"
)

func cmdImpact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("impact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	service := fs.String("service", "", "the services in scope, comma-separated (or --incident)")
	from := fs.String("from", "", "window start: RFC 3339, Unix ms, now or -1h")
	to := fs.String("to", "now", "window end")
	onset := fs.String("onset", "", "symptom onset, reported with the window (default --from; the baselines are placed against --from)")
	incident := fs.String("incident", "", "an incident id: its services and window")
	customers := fs.Bool("customers", false, "list every affected customer (the support team's export)")
	format := fs.String("format", "table", "output: table, csv (with --customers) or json")
	asJSON := fs.Bool("json", false, "print JSON for scripts (same as --format json)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *asJSON {
		*format = "json"
	}
	switch *format {
	case "table", "json":
	case "csv":
		if !*customers {
			return fmt.Errorf("flag --format: csv is the customer export; add --customers")
		}
	default:
		return fmt.Errorf("flag --format: unknown format %q (want table, csv or json)", *format)
	}
	// The same parameters, and the same errors, as GET /api/v1/impact.
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("incident", *incident)
	set("service", *service)
	set("from", *from)
	set("onset", *onset)
	if *incident == "" {
		set("to", *to)
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
	q, err := api.ImpactQuery(ctx, v, st, time.Now())
	if err != nil {
		return flagError(err)
	}
	rep, err := impact.New(st, cfg.Impact).Impact(ctx, q)
	if err != nil {
		return err
	}
	switch {
	case *format == "json" && *customers:
		return writeJSON(stdout, rep.Customers)
	case *format == "json":
		return writeJSON(stdout, rep)
	case *format == "csv":
		return writeCustomersCSV(stdout, rep.Customers)
	case *customers:
		printCustomers(stdout, rep.Customers, len(rep.Customers))
		return nil
	}
	printImpact(stdout, rep)
	return nil
}

// flagError rewords the API's parameter errors for the command line:
// invalid parameter "from" reads as flag --from.
func flagError(err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "invalid parameter \""); ok {
		if name, why, ok := strings.Cut(rest, "\": "); ok {
			return fmt.Errorf("flag --%s: %s", name, why)
		}
	}
	return err
}

// customerColumns are the export's columns, in order.
var customerColumns = []string{"customer", "users_affected", "users_estimated", "failures", "first_failure_utc", "last_failure_utc", "top_error", "services"}

// writeCustomersCSV writes the customer export (RFC 4180, a header row,
// times in RFC 3339 UTC) that a spreadsheet opens as it is. Customer ids
// and error messages come from telemetry, so a cell a spreadsheet would
// take for a formula (=, +, -, @, tab, CR) is prefixed with a quote.
func writeCustomersCSV(w io.Writer, cs []impact.Customer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(customerColumns); err != nil {
		return err
	}
	for _, c := range cs {
		if err := cw.Write([]string{
			csvText(c.Customer), fmt.Sprint(c.Users), fmt.Sprintf("%.0f", c.UsersEstimate), fmt.Sprintf("%.0f", c.Failures),
			c.FirstFailure.UTC().Format(time.RFC3339), c.LastFailure.UTC().Format(time.RFC3339),
			csvText(c.TopError), csvText(strings.Join(c.Services, " ")),
		}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvText neutralises a cell that a spreadsheet would evaluate (OWASP's
// advice for CSV injection).
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// printImpact prints a report for a person.
func printImpact(w io.Writer, r impact.Report) {
	win := r.Window
	fmt.Fprintf(w, "Impact on %s", strings.Join(win.Services, ", "))
	if win.Incident != "" {
		fmt.Fprintf(w, " (incident %s)", win.Incident)
	}
	fmt.Fprintf(w, "\n  window    %s → %s UTC (%s)\n", win.From.Format("2006-01-02 15:04"), win.To.Format("2006-01-02 15:04"), win.To.Sub(win.From).Round(time.Second))
	var bs []string
	for _, b := range win.Baselines {
		bs = append(bs, b.From.Format("2006-01-02 15:04")+" → "+b.To.Format("15:04"))
	}
	if len(bs) > 0 {
		fmt.Fprintf(w, "  baseline  %s\n", strings.Join(bs, ", "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\tSEEN\tESTIMATE\t%.0f%% INTERVAL\tBASELINE\tEXCESS (INTERVAL)\n", 100*r.Level)
	row := func(name string, a impact.Affected) {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f – %.0f\t%.0f\t%.0f (%.0f – %.0f)\n", name, a.Observed, a.Estimate, a.Low, a.High, a.Baseline, a.Excess, a.ExcessLow, a.ExcessHigh)
	}
	row("users", r.AffectedUsers)
	row("customers", r.AffectedCustomers)
	fmt.Fprintf(tw, "active users\t%d\t%.0f\t%.0f – %.0f\t\t\n", r.ActiveUsers.Observed, r.ActiveUsers.Estimate, r.ActiveUsers.Low, r.ActiveUsers.High)
	tw.Flush()
	fmt.Fprintf(w, "\n  share     %.1f%% of active users affected beyond the baseline\n", 100*r.Share)
	fmt.Fprintf(w, "  severity  %s (suggested)\n", r.Severity)
	fmt.Fprintf(w, "  failures  %.0f (%.0f without a user id)\n", r.Failures, r.AnonymousFailures)
	if len(r.Customers) > 0 {
		fmt.Fprintln(w)
		printCustomers(w, r.Customers, 10)
	}
	if len(r.ByService) > 0 {
		fmt.Fprintln(w, "\nBy service and route")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  SERVICE\tROUTE\tUSERS\tESTIMATE\tFAILURES\tTOP ERROR")
		for _, s := range r.ByService {
			fmt.Fprintf(tw, "  %s\t(all)\t%d\t%.0f\t%.0f\t\n", s.Service, s.Users.Observed, s.Users.Estimate, s.Failures)
			for _, rt := range s.Routes {
				route := rt.Route
				if route == "" {
					route = "(none)"
				}
				fmt.Fprintf(tw, "  \t%s\t%d\t%.0f\t%.0f\t%s\n", route, rt.Users, rt.UsersEstimate, rt.Failures, truncate(rt.TopError, 60))
			}
		}
		tw.Flush()
	}
}

// printCustomers prints the first n customers as a table.
func printCustomers(w io.Writer, cs []impact.Customer, n int) {
	if len(cs) > n {
		fmt.Fprintf(w, "Customers (top %d of %d; --customers lists all, --format csv exports them)\n", n, len(cs))
	} else {
		fmt.Fprintf(w, "Customers (%d)\n", len(cs))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  CUSTOMER\tUSERS\tESTIMATE\tFAILURES\tFIRST\tLAST\tTOP ERROR")
	for _, c := range cs[:min(n, len(cs))] {
		fmt.Fprintf(tw, "  %s\t%d\t%.0f\t%.0f\t%s\t%s\t%s\n", c.Customer, c.Users, c.UsersEstimate, c.Failures,
			c.FirstFailure.Format("15:04:05"), c.LastFailure.Format("15:04:05"), truncate(c.TopError, 60))
	}
	tw.Flush()
}
