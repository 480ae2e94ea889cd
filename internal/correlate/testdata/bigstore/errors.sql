-- Resamples the generator's own error events up to the benchmark's volume:
-- every copy keeps its original's service, fingerprint, release, message,
-- user, customer and level, so per-service shares, fingerprint frequencies,
-- the diurnal curve and the injected incident keep their shape; it gets a
-- fresh id and trace id and lands up to jitter_ms later, never earlier, so
-- no fingerprint is seen before the generator first emitted it (nor on the
-- next day: a copy that would be keeps its original's time). Each event is
-- copied `copies` times, plus once more for extra_ppm per million events.
INSERT INTO errors (id, time, service, environment, release, fingerprint, type, message,
                    user_id, customer_id, trace_id, level, sample_rate, attributes, ingested_at)
SELECT lower(hex(sipHash128(id, copy, 'id'))),
       if(toDate(time + toIntervalMillisecond(cityHash64(id, copy, 'jitter') % {jitter_ms:UInt64})) = toDate(time),
          time + toIntervalMillisecond(cityHash64(id, copy, 'jitter') % {jitter_ms:UInt64}), time),
       service, environment, release, fingerprint, type, message,
       user_id, customer_id,
       if(trace_id = '', '', lower(hex(sipHash128(trace_id, copy, 'trace')))),
       level, sample_rate, attributes, now64(3)
FROM errors
ARRAY JOIN range(1, 1 + {copies:UInt32} + (cityHash64(id, 'extra') % 1000000 < {extra_ppm:UInt32})) AS copy
