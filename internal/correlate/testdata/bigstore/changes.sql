-- Adds n background changes to the generator's: spread evenly over the
-- services and the days from start, 80% in working hours (09:00 to 18:00
-- UTC) and the rest at any hour, as 55% deploys, 25% flag flips, 12% config
-- edits and 8% rollbacks, with the fields each kind's source fills. Like the
-- generator's own incident freeze, no background change of a frozen service
-- falls in [freeze_from, freeze_to): the incident's ground truth stays the
-- generator's, not an accident of the fill.
INSERT INTO changes (id, time, kind, service, environment, version, previous_version, commit, author,
                     title, url, source, attributes, ingested_at)
SELECT concat('chg-', substring(lower(hex(sipHash128(n, 'bulk-change'))), 1, 12)),
       time, kind, service, 'production',
       if(kind IN ('deploy', 'rollback'), v, ''),
       if(kind IN ('deploy', 'rollback'), pv, ''),
       if(kind IN ('deploy', 'config'), commit, ''),
       ['alice.nguyen', 'bkowalski', 'carlos-m', 'dpatel', 'emma-schulz', 'fkimura',
        'gabriel.r', 'hannah-o', 'ivan.petrov', 'jwu', 'kofi-mensah', 'laura.b'][1 + h % 12],
       multiIf(kind = 'deploy', concat('Merge PR #', toString(pr), ': routine change to ', service),
               kind = 'rollback', concat('Rollback ', service, ' to ', pv, ': canary p99 above SLO'),
               kind = 'flag', concat('Flag ', flag, ': off → 10%'),
               concat(service, ': set ', cfg, ' to 40 (was 20)')),
       multiIf(kind = 'deploy', concat('https://github.com/acme/', service, '/pull/', toString(pr)),
               kind = 'flag', concat('https://app.launchdarkly.com/default/production/features/', flag),
               kind = 'config', concat('https://github.com/acme/k8s-config/commit/', commit),
               ''),
       multiIf(kind = 'deploy', 'github-actions', kind = 'flag', 'launchdarkly', 'argocd'),
       multiIf(kind = 'deploy', map('pr', toString(pr), 'pipeline', 'deploy-production'),
               kind = 'flag', map('flag', flag, 'from', 'off', 'to', '10%'),
               kind = 'config', map('key', cfg, 'from', '20', 'to', '40'),
               map()),
       now64(3)
FROM
(
    SELECT number AS n,
           cityHash64(number, 'bulk-change') AS h,
           {services:Array(String)}[1 + (h % length({services:Array(String)}))] AS service,
           multiIf(intDiv(h, 7) % 100 < 55, 'deploy', intDiv(h, 7) % 100 < 80, 'flag',
                   intDiv(h, 7) % 100 < 92, 'config', 'rollback') AS kind,
           {start:DateTime64(3, 'UTC')}
             + toIntervalMillisecond((intDiv(h, 701) % {days:UInt32}) * 86400000
               + if(intDiv(h, 1301) % 100 < 80,
                    32400000 + intDiv(h, 1303) % 32400000,
                    intDiv(h, 1303) % 86400000)) AS time,
           concat(toString(1 + intDiv(h, 11) % 3), '.', toString(10 + intDiv(h, 13) % 70), '.', toString(intDiv(h, 17) % 30)) AS v,
           concat(toString(1 + intDiv(h, 11) % 3), '.', toString(10 + intDiv(h, 13) % 70), '.', toString(intDiv(h, 19) % 30)) AS pv,
           concat(lower(hex(sipHash128(number, 'commit'))), substring(lower(hex(cityHash64(number, 'commit'))), 1, 8)) AS commit,
           1000 + intDiv(h, 23) % 9000 AS pr,
           concat('flag-', toString(intDiv(h, 29) % 40)) AS flag,
           ['http.client.timeout', 'db.pool.max_size', 'cache.ttl', 'replicas', 'rate_limit.rps'][1 + intDiv(h, 31) % 5] AS cfg
    FROM numbers(2 * {n:UInt64})
)
WHERE NOT (has({frozen:Array(String)}, service) AND time >= {freeze_from:DateTime64(3, 'UTC')} AND time < {freeze_to:DateTime64(3, 'UTC')})
LIMIT {n:UInt64}
