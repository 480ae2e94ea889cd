package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/correlator/correlator/internal/api"
	"github.com/correlator/correlator/internal/collectors/changes"
	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/incident"
	"github.com/correlator/correlator/internal/spool"
	"github.com/correlator/correlator/internal/store"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	listen := fs.String("listen", "", "address to listen on (default :8080; loopback only when no token is configured)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	format := cfg.Log.Format
	if format == "" {
		format = "json"
	}
	var h slog.Handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.Log.SlogLevel()})
	if format == "text" {
		h = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.Log.SlogLevel()})
	}
	log := slog.New(h)
	return serve(ctx, cfg, log, nil)
}

// serve runs the API until ctx ends, then stops accepting requests and
// flushes every accepted record before returning. ready, when not nil,
// receives the bound address.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, ready chan<- string) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st, err := openStore(ctx, cfg, log, store.NewMetrics(reg))
	if err != nil {
		return err
	}
	defer st.Close()
	// Accepted records are fsynced into the spool before the API answers,
	// and written to the store from there; what a crash or an outage left
	// in it is written first.
	sp, err := spool.Open(cfg.EffectiveSpoolDir(), spool.Options{MaxBytes: cfg.Ingest.SpoolMaxBytes, SegmentRecords: cfg.Ingest.BatchRows, Logger: log})
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	w := store.NewBatchWriter(st, store.WriterOptions{MaxRows: cfg.Ingest.BatchRows, Interval: time.Duration(cfg.Ingest.FlushInterval), Logger: log, Spool: sp})
	addr, loopbackOnly := cfg.EffectiveListen()
	if loopbackOnly {
		log.Warn("no API token configured: listening on loopback only; configure auth.tokens or CORRELATOR_TOKENS to listen on other interfaces", "listen", addr)
	}
	// One change log: every change, from the collectors and from the
	// ingest API (`correlator mark`), merges with other reports of it.
	merging := changes.NewMergingWriter(changes.NewMerger(changes.MergerOptionsFrom(cfg.Changes.Merge, st, log)), w)
	// Incidents, declared by people (API) or opened by alerts (the
	// tracker's Book), are snapshotted at each step and while open.
	// Their outlets keep Grafana's annotations in step and attach the
	// post-mortem bundle on resolve.
	tracker, outs, err := newIncidents(st, cfg, log, reg, true, incident.Options{Logger: log})
	if err != nil {
		w.Close(context.Background())
		return err
	}
	cs, err := buildCollectors(cfg, merging, w, tracker.Book(), log, reg)
	if err != nil {
		w.Close(context.Background())
		return err
	}
	srv := api.New(api.Options{
		Writer: merging, Store: st, Engine: correlate.New(st, correlate.Options{}),
		Impact: impact.New(st, cfg.Impact), Incidents: st,
		Auth: cfg, AuthRequired: !loopbackOnly, MaxBodyBytes: cfg.Ingest.MaxBodyBytes,
		Logger: log, Registry: reg, Routes: append(cs.routes, outs.routes(log)...),
		IncidentBook: tracker,
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		w.Close(context.Background())
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	store := "embedded " + cfg.DataDir
	if cfg.ClickHouse.DSN != "" {
		store = "clickhouse server"
	}
	pctx, stopPollers := context.WithCancel(ctx)
	var pollers sync.WaitGroup
	for _, p := range cs.pollers {
		pollers.Go(func() {
			log.Info("collector polling", "collector", p.name)
			if err := p.run(pctx); err != nil {
				log.Error("collector stopped", "collector", p.name, "err", err)
			}
		})
	}
	pollers.Go(func() {
		log.Info("incident snapshots", "interval", cfg.Incidents.EffectiveSnapshotInterval().String())
		_ = tracker.Run(pctx) // returns nil when pctx ends
	})
	outs.run(pctx, &pollers)
	defer func() { stopPollers(); pollers.Wait() }()
	log.Info("serving", "addr", ln.Addr().String(), "store", store, "spool", sp.Dir(), "auth", !loopbackOnly)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			w.Close(context.Background())
			return err
		}
	}
	log.Info("shutting down: finishing requests and flushing accepted records")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
	}
	stopPollers()
	pollers.Wait()
	if err := w.Close(sctx); err != nil {
		return fmt.Errorf("flush at shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
