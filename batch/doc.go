// Package batch recomputes every profile from the Parquet warehouse as of
// a cutoff and publishes the result as a snapshot:
//
//	<root>/profiles/snapshot=<cutoff>/part-NNNNN.parquet
//	<root>/profiles/snapshot=<cutoff>/_state/part-00000.parquet
//	<root>/profiles/snapshot=<cutoff>/_SUCCESS
//
// [Recompute] reads the event hours it needs, aggregates them with the
// local Arrow engine (package batch/local) or hands the work to a
// ClickHouse [SQLEngine], writes the snapshot with [WriteSnapshot] and
// passes the profiles to an optional [Publisher] (ClickHouse `profiles`).
//
// # Profile files
//
// One row per entity: the key column (named as the catalog's key field,
// required), then one nullable column per tag in catalog order: INT64,
// DOUBLE, BYTE_ARRAY UTF8, BOOLEAN, or INT64 TIMESTAMP(MILLIS, UTC). Rows
// are sorted by key; a part holds at most 1Mi rows.
//
// # Marker
//
// _SUCCESS (warehouse.Marker) lists the part files with their rows,
// carries the catalog hash, and in Extra a [SnapshotInfo]: the cutoff, the
// catalog name, the key and tag columns with their types (so `portrait
// profiles dump` can print a snapshot without the catalog), the engine,
// the base snapshot used, whether a state is stored, and "hours": the row
// count of every event hour's _SUCCESS before the cutoff (-1 when the
// hour had none) at the time the snapshot was made.
//
// # Lifetime state
//
// _state/ (ignored by profile readers: its name starts with "_") holds the
// mergeable partials of the lifetime tags, one long table:
//
//	<key>      key field type   the entity
//	tag        string           lifetime tag name; "" marks the entity present
//	n          int64            count; values summed (sum, avg); 1 (min, max,
//	                            first, last, a count_distinct value); the
//	                            value's count (a mode value)
//	sum_int    int64?           sum of an int64 field (sum, avg)
//	sum_float  double?          sum of a float64 field (sum, avg)
//	v_int, v_float, v_string, v_bool, v_time
//	                            the value (min, max, first, last) or one
//	                            distinct value (count_distinct, mode)
//	time, partition, offset     the place of the first/last value
//
// Every entity has one presence row, then at most one row per scalar
// lifetime tag (none when empty) and one row per distinct value of a
// count_distinct or mode tag.
//
// A recompute at C₁ uses the newest snapshot C₀ ≤ C₁ as its base when its
// catalog hash equals the current one, it holds a state, and no event hour
// before C₀ changed since (same hours, same marker row counts). It then
// reads only the hours from min(C₀, C₁ − longest window) on, less the
// de-duplication look-back when the catalog has an id field; otherwise it
// reads every hour before C₁ (or only the longest window's hours when
// there is no lifetime tag). Duplicate events further apart than the
// look-back (default 24h) are then not recognized.
package batch
