-- Job runs: the newest 50 run attempts of the last 7 days of runs, newest
-- first, with their duration (a running attempt has no end yet: 0). Reads
-- the newest row of each attempt (job_runs is a ReplacingMergeTree by ended).
SELECT
    job,
    run_id,
    attempt,
    started,
    argMax(status, ended) AS last_status,
    if(last_status = 'running', 0, toInt64(toUInt32(max(ended))) - toInt64(toUInt32(started))) AS duration_seconds,
    argMax(rows, ended) AS rows_written,
    argMax(error, ended) AS last_error
FROM job_runs
WHERE started >= (SELECT max(started) FROM job_runs) - 7 * 86400
GROUP BY job, run_id, attempt, started
ORDER BY started DESC, job ASC, attempt DESC
LIMIT 50
