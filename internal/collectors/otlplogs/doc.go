// Package otlplogs receives logs over OTLP/HTTP: POST /v1/logs with an
// ExportLogsServiceRequest, binary protobuf (application/x-protobuf) or the
// OTLP JSON encoding (application/json), optionally gzip-compressed. Any
// OpenTelemetry SDK or Collector exporting logs over otlphttp can send to
// correlator directly.
//
// # Wiring
//
// Config section `otlp_logs:` (Config). In `correlator serve`:
//
//	h, err := otlplogs.New(cfg.OTLPLogs, batchWriter, logger, registry)
//	mux.Handle("POST /v1/logs", auth(config.ScopeIngest, h))
//
// The route is the OTLP default path, so an exporter pointed at correlator's
// base URL (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=https://host:8080/v1/logs, or
// OTEL_EXPORTER_OTLP_ENDPOINT=https://host:8080 with protocol http/protobuf)
// finds it. It belongs behind the API's bearer-token check with the ingest
// scope; exporters send the token as a header
// (OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer <token>").
//
// # Mapping
//
// Each LogRecord becomes one event.LogRecord:
//
//   - service: the resource attribute service.name, else
//     Config.DefaultService ("unknown_service", as OpenTelemetry SDKs say).
//   - time: time_unix_nano, or observed_time_unix_nano when it is 0 (as the
//     Collector's ClickHouse exporter does). A record with neither, or with a
//     time before 2000 or more than 24h ahead, is rejected.
//   - severity: severity_number (1-24) mapped to TRACE..FATAL; without one,
//     severity_text normalised by ingest.NormalizeSeverity ("Information"
//     gives INFO); without either, INFO.
//   - body: a string body as is; any other body as text: scalars as their
//     JSON text (true, 42, 1.5), bytes as base64, arrays and maps as compact
//     JSON. Bodies over 64 KiB are cut and end in "…[truncated]".
//   - trace and span ids: lower-case hex; all-zero ids are no id. A trace id
//     that is not 16 bytes or a span id that is not 8 bytes rejects the
//     record.
//   - attributes: the log record's, then the scope's, then the resource's
//     (Config.ResourceAttributes selects which), a key present in several
//     keeping the most specific value; plus otel.scope.name,
//     otel.scope.version and event.name when set. Values are stringified
//     like bodies.
//   - user and customer: the first of Config.UserAttributes
//     (CustomerAttributes) found among the record's, scope's or resource's
//     attributes.
//   - id: derived from the record's content (time, service, severity, body,
//     trace and span ids, attributes), so a re-sent request gives the same
//     ids; the store deduplicates logs on their content in any case.
//
// # Responses
//
// As the OTLP specification says: 200 with an ExportLogsServiceResponse in
// the request's encoding; when some records are invalid, the valid ones are
// kept and partial_success carries the number rejected and a message naming
// each rejected record by its position (resourceLogs[0].scopeLogs[1].
// logRecords[2]) and field. An undecodable body is 400, a body over
// Config.MaxBodyBytes (after decompression) 413, a content type or encoding
// other than protobuf, JSON and gzip 415, each with a google.rpc.Status
// message. When the writer refuses the records, 503 with Retry-After: the
// client retries and, ids being derived from content, the retry cannot
// double-count.
package otlplogs
