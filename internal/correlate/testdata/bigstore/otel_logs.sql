-- Resamples the generator's request-scoped log lines (those with a trace:
-- request summaries, slow-request warnings, error and retry lines) up to the
-- benchmark's volume. Lines without a trace (a replica starting, a flag
-- update, a config reload) stand for changes and are not multiplied. Every
-- copy keeps its original's service, severity, body and attributes, gets a
-- fresh trace and span id and lands up to jitter_ns later on the same day,
-- so no two copies share the table's deduplication key.
INSERT INTO otel_logs (Timestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName, Body,
                       ResourceSchemaUrl, ResourceAttributes, ScopeSchemaUrl, ScopeName, ScopeVersion,
                       ScopeAttributes, LogAttributes)
SELECT if(toDate(Timestamp + toIntervalNanosecond(cityHash64(Timestamp, TraceId, SpanId, copy) % {jitter_ns:UInt64})) = toDate(Timestamp),
          Timestamp + toIntervalNanosecond(cityHash64(Timestamp, TraceId, SpanId, copy) % {jitter_ns:UInt64}), Timestamp),
       lower(hex(sipHash128(TraceId, copy, 'trace'))),
       if(SpanId = '', '', substring(lower(hex(sipHash128(SpanId, copy, 'span'))), 1, 16)),
       TraceFlags, SeverityText, SeverityNumber, ServiceName, Body,
       ResourceSchemaUrl, ResourceAttributes, ScopeSchemaUrl, ScopeName, ScopeVersion,
       ScopeAttributes, LogAttributes
FROM otel_logs
ARRAY JOIN range(1, 1 + {copies:UInt32} + (cityHash64(Timestamp, TraceId, SpanId, 'extra') % 1000000 < {extra_ppm:UInt32})) AS copy
WHERE TraceId != ''
