CREATE TABLE IF NOT EXISTS correlator.correlator_migrations ON CLUSTER prod_cluster
(
    `version` UInt32,
    `name` String,
    `applied_at` DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/correlator/correlator_migrations', '{replica}', applied_at)
ORDER BY version;

CREATE TABLE IF NOT EXISTS correlator.changes_local ON CLUSTER prod_cluster
(
    `id` String,
    `time` DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1)),
    `kind` LowCardinality(String),
    `service` LowCardinality(String),
    `environment` LowCardinality(String),
    `version` String,
    `previous_version` String,
    `commit` String,
    `author` String,
    `title` String CODEC(ZSTD(1)),
    `url` String CODEC(ZSTD(1)),
    `source` LowCardinality(String),
    `attributes` Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    `ingested_at` DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/correlator/changes_local', '{replica}', ingested_at)
PARTITION BY toYYYYMM(time)
ORDER BY (service, time, id);

CREATE TABLE IF NOT EXISTS correlator.changes ON CLUSTER prod_cluster AS correlator.changes_local
ENGINE = Distributed(prod_cluster, correlator, changes_local, cityHash64(id));

CREATE TABLE IF NOT EXISTS correlator.errors_local ON CLUSTER prod_cluster
(
    `id` String,
    `time` DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1)),
    `service` LowCardinality(String),
    `environment` LowCardinality(String),
    `release` LowCardinality(String),
    `fingerprint` String CODEC(ZSTD(1)),
    `type` LowCardinality(String),
    `message` String CODEC(ZSTD(1)),
    `user_id` String CODEC(ZSTD(1)),
    `customer_id` String CODEC(ZSTD(1)),
    `trace_id` String CODEC(ZSTD(1)),
    `level` LowCardinality(String),
    `sample_rate` Float64,
    `attributes` Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    `ingested_at` DateTime64(3, 'UTC'),
    INDEX idx_fingerprint fingerprint TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 4
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/correlator/errors_local', '{replica}', ingested_at)
PARTITION BY toDate(time)
ORDER BY (service, time, id);

CREATE TABLE IF NOT EXISTS correlator.errors ON CLUSTER prod_cluster AS correlator.errors_local
ENGINE = Distributed(prod_cluster, correlator, errors_local, cityHash64(id));

CREATE TABLE IF NOT EXISTS correlator.otel_logs_local ON CLUSTER prod_cluster
(
    `Timestamp` DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    `TimestampTime` DateTime DEFAULT toDateTime(Timestamp),
    `TraceId` String CODEC(ZSTD(1)),
    `SpanId` String CODEC(ZSTD(1)),
    `TraceFlags` UInt8,
    `SeverityText` LowCardinality(String) CODEC(ZSTD(1)),
    `SeverityNumber` UInt8,
    `ServiceName` LowCardinality(String) CODEC(ZSTD(1)),
    `Body` String CODEC(ZSTD(1)),
    `ResourceSchemaUrl` LowCardinality(String) CODEC(ZSTD(1)),
    `ResourceAttributes` Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    `ScopeSchemaUrl` LowCardinality(String) CODEC(ZSTD(1)),
    `ScopeName` String CODEC(ZSTD(1)),
    `ScopeVersion` LowCardinality(String) CODEC(ZSTD(1)),
    `ScopeAttributes` Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    `LogAttributes` Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/correlator/otel_logs_local', '{replica}')
PARTITION BY toDate(TimestampTime)
PRIMARY KEY (ServiceName, TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp, TraceId, SpanId, cityHash64(Body));

CREATE TABLE IF NOT EXISTS correlator.otel_logs ON CLUSTER prod_cluster AS correlator.otel_logs_local
ENGINE = Distributed(prod_cluster, correlator, otel_logs_local, cityHash64(ServiceName, Timestamp, TraceId, SpanId, Body));

CREATE TABLE IF NOT EXISTS correlator.metric_points_local ON CLUSTER prod_cluster
(
    `time` DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1)),
    `service` LowCardinality(String),
    `name` LowCardinality(String),
    `value` Float64 CODEC(Gorilla, ZSTD(1)),
    `labels` Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    `series` UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/correlator/metric_points_local', '{replica}')
PARTITION BY toDate(time)
ORDER BY (service, name, series, time);

CREATE TABLE IF NOT EXISTS correlator.metric_points ON CLUSTER prod_cluster AS correlator.metric_points_local
ENGINE = Distributed(prod_cluster, correlator, metric_points_local, series);

CREATE TABLE IF NOT EXISTS correlator.services_local ON CLUSTER prod_cluster
(
    `service` String,
    `depends_on` Array(String),
    `time` DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/correlator/services_local', '{replica}', time)
ORDER BY service;

CREATE TABLE IF NOT EXISTS correlator.services ON CLUSTER prod_cluster AS correlator.services_local
ENGINE = Distributed(prod_cluster, correlator, services_local, cityHash64(service));

CREATE TABLE IF NOT EXISTS correlator.incidents_local ON CLUSTER prod_cluster
(
    `id` String,
    `title` String,
    `services` Array(String),
    `status` LowCardinality(String),
    `severity` LowCardinality(String),
    `opened_at` DateTime64(3, 'UTC'),
    `onset` DateTime64(3, 'UTC'),
    `resolved_at` DateTime64(3, 'UTC'),
    `updated_at` DateTime64(3, 'UTC'),
    `note` String CODEC(ZSTD(1)),
    `attributes` Map(LowCardinality(String), String) CODEC(ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/correlator/incidents_local', '{replica}')
ORDER BY (id, updated_at);

CREATE TABLE IF NOT EXISTS correlator.incidents ON CLUSTER prod_cluster AS correlator.incidents_local
ENGINE = Distributed(prod_cluster, correlator, incidents_local, cityHash64(id));

CREATE TABLE IF NOT EXISTS correlator.error_fingerprints_local ON CLUSTER prod_cluster
(
    `service` LowCardinality(String),
    `fingerprint` String CODEC(ZSTD(1)),
    `day` Date,
    `first_seen` SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    `last_seen` SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    `events` SimpleAggregateFunction(sum, UInt64),
    `type` SimpleAggregateFunction(any, LowCardinality(String)),
    `message` SimpleAggregateFunction(any, String) CODEC(ZSTD(1)),
    `first_release` AggregateFunction(argMin, LowCardinality(String), DateTime64(3, 'UTC'))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/correlator/error_fingerprints_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (service, day, fingerprint);

CREATE TABLE IF NOT EXISTS correlator.error_fingerprints ON CLUSTER prod_cluster AS correlator.error_fingerprints_local
ENGINE = Distributed(prod_cluster, correlator, error_fingerprints_local, cityHash64(service, fingerprint));

CREATE MATERIALIZED VIEW IF NOT EXISTS correlator.error_fingerprints_mv ON CLUSTER prod_cluster TO correlator.error_fingerprints_local
AS SELECT service, fingerprint, toDate(time) AS day,
       min(time) AS first_seen, max(time) AS last_seen, count() AS events,
       any(type) AS type, any(message) AS message, argMinState(release, time) AS first_release
FROM correlator.errors_local
GROUP BY service, fingerprint, day;

INSERT INTO correlator.error_fingerprints
SELECT service, fingerprint, toDate(time) AS day,
       min(time) AS first_seen, max(time) AS last_seen, count() AS events,
       any(type) AS type, any(message) AS message, argMinState(release, time) AS first_release
FROM correlator.errors
GROUP BY service, fingerprint, day;

CREATE TABLE IF NOT EXISTS correlator.incident_snapshots_local ON CLUSTER prod_cluster
(
    `incident_id` String,
    `taken_at` DateTime64(3, 'UTC'),
    `trigger` LowCardinality(String),
    `window_from` DateTime64(3, 'UTC'),
    `window_to` DateTime64(3, 'UTC'),
    `causes` String CODEC(ZSTD(1)),
    `impact` String CODEC(ZSTD(1)),
    `queries` String CODEC(ZSTD(1)),
    `error` String CODEC(ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/correlator/incident_snapshots_local', '{replica}')
ORDER BY (incident_id, taken_at);

CREATE TABLE IF NOT EXISTS correlator.incident_snapshots ON CLUSTER prod_cluster AS correlator.incident_snapshots_local
ENGINE = Distributed(prod_cluster, correlator, incident_snapshots_local, cityHash64(incident_id));

CREATE TABLE IF NOT EXISTS correlator.grafana_annotations_local ON CLUSTER prod_cluster
(
    `key` String,
    `annotation_id` Int64,
    `hash` String,
    `synced_at` DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/correlator/grafana_annotations_local', '{replica}', synced_at)
ORDER BY key;

CREATE TABLE IF NOT EXISTS correlator.grafana_annotations ON CLUSTER prod_cluster AS correlator.grafana_annotations_local
ENGINE = Distributed(prod_cluster, correlator, grafana_annotations_local, cityHash64(key));
