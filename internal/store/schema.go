package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// colDef is one column of a table: its insert Column plus DDL-only parts.
type colDef struct {
	Name, Type string
	// Extra follows the type in DDL: DEFAULT, MATERIALIZED, CODEC.
	Extra string
}

// tableDef is a table of correlator's schema. The same definition renders
// the single-node DDL and the cluster DDL (replicated local table plus a
// Distributed table of the plain name), so both have identical columns.
type tableDef struct {
	Name    string
	Columns []colDef
	Indexes []string
	// Engine is MergeTree, ReplacingMergeTree or AggregatingMergeTree;
	// Version is the ReplacingMergeTree version column (may be empty).
	Engine, Version string
	PartitionBy     string
	PrimaryKey      string
	OrderBy         string
	// ShardKey spreads rows over shards in a cluster. It is derived from
	// the deduplication key so that re-sent copies of a record land on the
	// same shard, where ReplacingMergeTree can collapse them.
	ShardKey string
	// Global tables (the migrations ledger) are replicated to every node
	// instead of being sharded.
	Global bool
}

const (
	dt64    = "DateTime64(3, 'UTC')"
	lcs     = "LowCardinality(String)"
	strMap  = "Map(LowCardinality(String), String)"
	zstd    = "CODEC(ZSTD(1))"
	timeCod = "CODEC(Delta(8), ZSTD(1))"
)

// Why the sort keys lead with the service and then the time: nearly every
// query correlator runs is "these services, this time window". With
// (service, time, ...) as the primary key ClickHouse's sparse index selects
// exactly the granules of that window for each service, and daily (monthly
// for the small changes table) partitions let whole days outside the window
// be skipped before the index is even read. The id (or the record's
// identity) closes the key because ReplacingMergeTree deduplicates on the
// full sort key: re-sent records collapse, and reads use FINAL.
var (
	changesTable = tableDef{
		Name: "changes",
		Columns: []colDef{
			{"id", "String", ""},
			{"time", dt64, timeCod},
			{"kind", lcs, ""},
			{"service", lcs, ""},
			{"environment", lcs, ""},
			{"version", "String", ""},
			{"previous_version", "String", ""},
			{"commit", "String", ""},
			{"author", "String", ""},
			{"title", "String", zstd},
			{"url", "String", zstd},
			{"source", lcs, ""},
			{"attributes", strMap, zstd},
			{"ingested_at", dt64, ""},
		},
		Engine: "ReplacingMergeTree", Version: "ingested_at",
		PartitionBy: "toYYYYMM(time)",
		OrderBy:     "(service, time, id)",
		ShardKey:    "cityHash64(id)",
	}
	errorsTable = tableDef{
		Name: "errors",
		Columns: []colDef{
			{"id", "String", ""},
			{"time", dt64, timeCod},
			{"service", lcs, ""},
			{"environment", lcs, ""},
			{"release", lcs, ""},
			{"fingerprint", "String", zstd},
			{"type", lcs, ""},
			{"message", "String", zstd},
			{"user_id", "String", zstd},
			{"customer_id", "String", zstd},
			{"trace_id", "String", zstd},
			{"level", lcs, ""},
			{"sample_rate", "Float64", ""},
			{"attributes", strMap, zstd},
			{"ingested_at", dt64, ""},
		},
		Indexes: []string{
			"INDEX idx_fingerprint fingerprint TYPE bloom_filter(0.01) GRANULARITY 4",
			"INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 4",
			"INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 4",
		},
		Engine: "ReplacingMergeTree", Version: "ingested_at",
		PartitionBy: "toDate(time)",
		OrderBy:     "(service, time, id)",
		ShardKey:    "cityHash64(id)",
	}
	// logsTable has the columns of the OpenTelemetry Collector ClickHouse
	// exporter's otel_logs table, so that queries written for it also run on
	// a table the exporter created. Its engine differs: correlator's copy
	// deduplicates on the record's identity.
	logsTable = tableDef{
		Name: "otel_logs",
		Columns: []colDef{
			{"Timestamp", "DateTime64(9)", timeCod},
			{"TimestampTime", "DateTime", "DEFAULT toDateTime(Timestamp)"},
			{"TraceId", "String", zstd},
			{"SpanId", "String", zstd},
			{"TraceFlags", "UInt8", ""},
			{"SeverityText", lcs, zstd},
			{"SeverityNumber", "UInt8", ""},
			{"ServiceName", lcs, zstd},
			{"Body", "String", zstd},
			{"ResourceSchemaUrl", lcs, zstd},
			{"ResourceAttributes", strMap, zstd},
			{"ScopeSchemaUrl", lcs, zstd},
			{"ScopeName", "String", zstd},
			{"ScopeVersion", lcs, zstd},
			{"ScopeAttributes", strMap, zstd},
			{"LogAttributes", strMap, zstd},
		},
		Indexes: []string{
			"INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1",
			"INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
			"INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
			"INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8",
		},
		Engine:      "ReplacingMergeTree",
		PartitionBy: "toDate(TimestampTime)",
		PrimaryKey:  "(ServiceName, TimestampTime)",
		OrderBy:     "(ServiceName, TimestampTime, Timestamp, TraceId, SpanId, cityHash64(Body))",
		ShardKey:    "cityHash64(ServiceName, Timestamp, TraceId, SpanId, Body)",
	}
	metricsTable = tableDef{
		Name: "metric_points",
		Columns: []colDef{
			{"time", dt64, timeCod},
			{"service", lcs, ""},
			{"name", lcs, ""},
			{"value", "Float64", "CODEC(Gorilla, ZSTD(1))"},
			{"labels", strMap, zstd},
			// series identifies (service, name, labels); Map columns
			// cannot be part of a sort key, so the labels enter it as
			// this hash, computed over the sorted labels.
			{"series", "UInt64", ""},
		},
		Engine:      "ReplacingMergeTree",
		PartitionBy: "toDate(time)",
		OrderBy:     "(service, name, series, time)",
		ShardKey:    "series",
	}
	servicesTable = tableDef{
		Name: "services",
		Columns: []colDef{
			{"service", "String", ""},
			{"depends_on", "Array(String)", ""},
			{"time", dt64, ""},
		},
		Engine: "ReplacingMergeTree", Version: "time",
		OrderBy:  "service",
		ShardKey: "cityHash64(service)",
	}
	// incidentsTable keeps every state of every incident: one row per
	// update, the current state being the row with the latest updated_at.
	incidentsTable = tableDef{
		Name: "incidents",
		Columns: []colDef{
			{"id", "String", ""},
			{"title", "String", ""},
			{"services", "Array(String)", ""},
			{"status", lcs, ""},
			{"severity", lcs, ""},
			{"opened_at", dt64, ""},
			{"onset", dt64, ""},
			{"resolved_at", dt64, ""},
			{"updated_at", dt64, ""},
			{"note", "String", zstd},
			{"attributes", strMap, zstd},
		},
		Engine:   "MergeTree",
		OrderBy:  "(id, updated_at)",
		ShardKey: "cityHash64(id)",
	}
	// errorFingerprintsTable rolls errors up to one row per service,
	// fingerprint and day, filled by errorFingerprintsView. "Is this
	// fingerprint new?" then reads a few rows per fingerprint instead of a
	// week of error events. The rows are partial aggregates until the
	// engine merges them, so readers aggregate again (GROUP BY), and the
	// view sees every insert, re-sent events too: first_seen, last_seen,
	// type, message and first_release are exact, events counts every
	// copy (an upper bound of the distinct events; exact counts come from
	// errors FINAL).
	errorFingerprintsTable = tableDef{
		Name: "error_fingerprints",
		Columns: []colDef{
			{"service", lcs, ""},
			{"fingerprint", "String", zstd},
			{"day", "Date", ""},
			{"first_seen", "SimpleAggregateFunction(min, " + dt64 + ")", ""},
			{"last_seen", "SimpleAggregateFunction(max, " + dt64 + ")", ""},
			{"events", "SimpleAggregateFunction(sum, UInt64)", ""},
			{"type", "SimpleAggregateFunction(any, " + lcs + ")", ""},
			{"message", "SimpleAggregateFunction(any, String)", zstd},
			{"first_release", "AggregateFunction(argMin, " + lcs + ", " + dt64 + ")", ""},
		},
		Engine:      "AggregatingMergeTree",
		PartitionBy: "toYYYYMM(day)",
		OrderBy:     "(service, day, fingerprint)",
		// Only the backfill writes through the Distributed table; the view
		// writes on the node that stored the events. Readers aggregate
		// over every shard, so where a row lands does not matter.
		ShardKey: "cityHash64(service, fingerprint)",
	}
	// incidentSnapshotsTable keeps what correlator knew about an incident
	// at each moment: the ranked causes and the impact, as the JSON the
	// API returned, with the queries that produced them, so a post-mortem
	// can show what was known when and a reviewer can re-run each figure.
	incidentSnapshotsTable = tableDef{
		Name: "incident_snapshots",
		Columns: []colDef{
			{"incident_id", "String", ""},
			{"taken_at", dt64, ""},
			{"trigger", lcs, ""},
			{"window_from", dt64, ""},
			{"window_to", dt64, ""},
			{"causes", "String", zstd},
			{"impact", "String", zstd},
			{"queries", "String", zstd},
			{"error", "String", zstd},
		},
		Engine:   "MergeTree",
		OrderBy:  "(incident_id, taken_at)",
		ShardKey: "cityHash64(incident_id)",
	}
	// grafanaAnnotationsTable remembers the Grafana annotation made for
	// each of our objects (a change, an incident), so a re-sync updates it
	// in place instead of adding a duplicate. hash is what was last sent:
	// an unchanged object is not sent again.
	grafanaAnnotationsTable = tableDef{
		Name: "grafana_annotations",
		Columns: []colDef{
			{"key", "String", ""},
			{"annotation_id", "Int64", ""},
			{"hash", "String", ""},
			{"synced_at", dt64, ""},
		},
		Engine: "ReplacingMergeTree", Version: "synced_at",
		OrderBy:  "key",
		ShardKey: "cityHash64(key)",
	}
	migrationsTable = tableDef{
		Name: "correlator_migrations",
		Columns: []colDef{
			{"version", "UInt32", ""},
			{"name", "String", ""},
			{"applied_at", dt64, ""},
		},
		Engine: "ReplacingMergeTree", Version: "applied_at",
		OrderBy: "version",
		Global:  true,
	}
)

// insertColumns lists the columns correlator writes (all but DEFAULT ones).
func (t tableDef) insertColumns() []Column {
	var cols []Column
	for _, c := range t.Columns {
		if strings.HasPrefix(c.Extra, "DEFAULT") || strings.HasPrefix(c.Extra, "MATERIALIZED") {
			continue
		}
		cols = append(cols, Column{c.Name, c.Type})
	}
	return cols
}

// ddl renders the CREATE statements of t: one for a single node, two (the
// replicated local table and the Distributed table) for a cluster.
func (t tableDef) ddl(db, cluster string) []string {
	var b strings.Builder
	name := t.Name
	onCluster := ""
	engine := t.Engine
	if cluster != "" {
		if !t.Global {
			name = t.Name + "_local"
		}
		onCluster = " ON CLUSTER " + cluster
		path := "'/clickhouse/tables/{shard}/" + db + "/" + name + "'"
		if t.Global {
			// One replica set spanning every node of the cluster.
			path = "'/clickhouse/tables/" + db + "/" + name + "'"
		}
		args := path + ", '{replica}'"
		if t.Version != "" {
			args += ", " + t.Version
		}
		engine = "Replicated" + t.Engine + "(" + args + ")"
	} else {
		engine += "(" + t.Version + ")"
	}
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s%s\n(\n", db, name, onCluster)
	for i, c := range t.Columns {
		fmt.Fprintf(&b, "    `%s` %s", c.Name, c.Type)
		if c.Extra != "" {
			b.WriteString(" " + c.Extra)
		}
		if i < len(t.Columns)-1 || len(t.Indexes) > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	for i, ix := range t.Indexes {
		b.WriteString("    " + ix)
		if i < len(t.Indexes)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, ")\nENGINE = %s\n", engine)
	if t.PartitionBy != "" {
		fmt.Fprintf(&b, "PARTITION BY %s\n", t.PartitionBy)
	}
	if t.PrimaryKey != "" {
		fmt.Fprintf(&b, "PRIMARY KEY %s\n", t.PrimaryKey)
	}
	fmt.Fprintf(&b, "ORDER BY %s", t.OrderBy)
	out := []string{b.String()}
	if cluster != "" && !t.Global {
		out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s AS %s.%s\nENGINE = Distributed(%s, %s, %s, %s)",
			db, t.Name, cluster, db, name, cluster, db, name, t.ShardKey))
	}
	return out
}

// viewDef is a materialized view: on every block inserted into Source,
// ClickHouse runs Select over the block and appends the result to Target.
// In a cluster the view reads and writes the local tables of each node
// (inserts into a Distributed table reach only the local tables), and
// readers see the target through its Distributed table.
type viewDef struct {
	Name           string
	Source, Target string // Source and Target are plain table names of the schema.
	// Select is the view's query, with %s where the source table goes.
	Select string
	// Backfill makes the migration that creates the view also insert the
	// Select of the rows Source already holds, so that the target covers
	// the past too. It runs after the view exists, so rows inserted
	// meanwhile may be counted twice but never missed; a view must
	// tolerate that (and a second run of the migration), as the rollups
	// of ReplacingMergeTree tables must tolerate re-sent rows anyway.
	Backfill bool
}

// ddl renders the CREATE statement of the view.
func (v viewDef) ddl(db, cluster string) string {
	name, source, target := v.Name, v.Source, v.Target
	onCluster := ""
	if cluster != "" {
		onCluster = " ON CLUSTER " + cluster
		source, target = source+"_local", target+"_local"
	}
	return fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s%s TO %s.%s\nAS %s",
		db, name, onCluster, db, target, fmt.Sprintf(v.Select, db+"."+source))
}

// backfill renders the statement that fills the target from the rows
// already in the source. In a cluster it reads and writes the Distributed
// tables: one statement, run once, covers every shard.
func (v viewDef) backfill(db string) string {
	return fmt.Sprintf("INSERT INTO %s.%s\n%s", db, v.Target, fmt.Sprintf(v.Select, db+"."+v.Source))
}

// errorFingerprintsView feeds errorFingerprintsTable from errors.
var errorFingerprintsView = viewDef{
	Name:   "error_fingerprints_mv",
	Source: "errors",
	Target: "error_fingerprints",
	Select: `SELECT service, fingerprint, toDate(time) AS day,
       min(time) AS first_seen, max(time) AS last_seen, count() AS events,
       any(type) AS type, any(message) AS message, argMinState(release, time) AS first_release
FROM %s
GROUP BY service, fingerprint, day`,
	Backfill: true,
}

// migration is one numbered, idempotent step of the schema. Every
// statement must be safe to run twice (IF NOT EXISTS), because several
// correlator processes may start against one ClickHouse at once; a
// backfill is the exception its viewDef documents.
type migration struct {
	Version int
	Name    string
	Tables  []tableDef
	// Views are created after Tables, then backfilled.
	Views []viewDef
}

// migrations is the schema's history. Append; never edit a released step.
var migrations = []migration{
	{Version: 1, Name: "initial schema", Tables: []tableDef{changesTable, errorsTable, logsTable, metricsTable, servicesTable, incidentsTable}},
	{Version: 2, Name: "error fingerprint rollup", Tables: []tableDef{errorFingerprintsTable}, Views: []viewDef{errorFingerprintsView}},
	{Version: 3, Name: "incident snapshots and grafana annotations", Tables: []tableDef{incidentSnapshotsTable, grafanaAnnotationsTable}},
}

// statement is one statement of a migration and what it acts on, for
// error messages.
type statement struct{ object, sql string }

// statements renders the migration's statements in the order they run:
// tables, views, backfills.
func (m migration) statements(db, cluster string) []statement {
	var out []statement
	for _, t := range m.Tables {
		for _, q := range t.ddl(db, cluster) {
			out = append(out, statement{"table " + t.Name, q})
		}
	}
	for _, v := range m.Views {
		out = append(out, statement{"view " + v.Name, v.ddl(db, cluster)})
	}
	for _, v := range m.Views {
		if v.Backfill {
			out = append(out, statement{"backfill of " + v.Target, v.backfill(db)})
		}
	}
	return out
}

// MigrationStatements renders every statement of every migration for the
// given database and cluster ("" for a single node), in order. It is what
// Migrate runs, exposed for `correlator migrate --print` and DDL tests.
func MigrationStatements(db, cluster string) []string {
	out := migrationsTable.ddl(db, cluster)
	for _, m := range migrations {
		for _, st := range m.statements(db, cluster) {
			out = append(out, st.sql)
		}
	}
	return out
}

// Migrate brings the schema up to date and records each applied step in
// correlator_migrations. It is idempotent and safe to run concurrently from
// several processes.
func (s *Store) Migrate(ctx context.Context) error {
	for _, q := range migrationsTable.ddl(s.db, s.cluster) {
		if err := s.eng.Exec(ctx, q, nil); err != nil {
			return fmt.Errorf("create migrations table: %w", err)
		}
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[m.Version] {
			continue
		}
		for _, st := range m.statements(s.db, s.cluster) {
			if err := s.eng.Exec(ctx, st.sql, nil); err != nil {
				return fmt.Errorf("migration %d (%s): %s: %w", m.Version, m.Name, st.object, err)
			}
		}
		err := s.eng.Insert(ctx, "correlator_migrations", migrationsTable.insertColumns(), []any{
			[]uint32{uint32(m.Version)}, []string{m.Name}, []time.Time{time.Now().UTC()},
		})
		if err != nil {
			return fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		s.log.Info("schema migrated", "version", m.Version, "name", m.Name)
	}
	return nil
}

func (s *Store) appliedMigrations(ctx context.Context) (map[int]bool, error) {
	rows, err := s.eng.Query(ctx, "SELECT DISTINCT version FROM correlator_migrations", nil)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read migrations: %w", err)
		}
		out[int(v)] = true
	}
	return out, rows.Err()
}

// SchemaVersion is the latest migration version this build knows.
func SchemaVersion() int { return migrations[len(migrations)-1].Version }
