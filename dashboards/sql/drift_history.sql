-- Drift history: per snapshot (last 30 days of reconciles) and tag, the
-- newest reconcile's counts (a re-run for the same snapshot replaces the
-- older rows: argMax by computed_at), the drift share and the likely causes.
SELECT
    snapshot,
    tag,
    argMax(users_compared, computed_at) AS n_compared,
    argMax(different, computed_at) AS n_different,
    argMax(only_batch, computed_at) AS n_only_batch,
    argMax(only_speed, computed_at) AS n_only_speed,
    round(100 * (n_different + n_only_batch + n_only_speed) / greatest(n_compared, 1), 4) AS drift_pct,
    argMax(max_abs_error, computed_at) AS max_error,
    argMax(causes, computed_at) AS last_causes,
    max(computed_at) AS reconciled_at
FROM tag_drift
WHERE snapshot >= (SELECT max(snapshot) FROM tag_drift) - 30 * 86400
GROUP BY snapshot, tag
ORDER BY snapshot DESC, drift_pct DESC, tag ASC
