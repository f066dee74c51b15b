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
// the base snapshot used, whether a state is stored and its format, and
// "hours": the row count of every event hour's _SUCCESS before the cutoff
// (-1 when the hour had none) at the time the snapshot was made.
//
// # Lifetime state
//
// _state/ (ignored by profile readers: its name starts with "_") holds the
// mergeable partials of the lifetime tags (schemas.Partial).
// part-00000.parquet is a wide table, one row per entity (those of the
// profiles), its columns the key (required) and, per scalar lifetime tag
// in catalog order, the fields its aggregate needs:
//
//	count           <tag>.n                                  int64
//	sum, avg        <tag>.n, <tag>.sum                       int64; int64 or double (the field's type)
//	min, max        <tag>.v                                  the tag's type, null when none
//	first, last     <tag>.v, <tag>.time, <tag>.partition, <tag>.offset
//	                                                         the tag's type, timestamp, int64, int64;
//	                                                         all null when none
//
// n counts the events (count) or the values summed (sum, avg); a min, max,
// first or last partial with a value has N 1. The values of a
// count_distinct or mode lifetime tag are in a long table of their own,
// values-<tag>.parquet: one row per entity and distinct value, the
// entity's rows together and ascending by value, the entities in the
// order of the wide table (those without values absent):
//
//	<key>      the entity
//	value      the tag's field type
//	count      int64: the value's count (mode only)
//
// Integers and timestamps are delta-encoded, pages snappy-compressed; every
// file has a row group per 64Ki entities. The marker's state_format is 2;
// a snapshot without one holds the long table of the first format (a row
// per entity and tag), which is not read: a recompute on it runs in full
// ("base state is in an old format") and writes the new format, and
// ReadState fails with ErrOldState.
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
