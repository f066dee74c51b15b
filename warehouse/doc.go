// Package warehouse stores portrait's Hive-style Parquet tables on a local
// (or mounted) file system:
//
//	<root>/events/dt=YYYY-MM-DD/hour=HH/part-<p>-<first>-<last>.parquet
//	<root>/profiles/snapshot=YYYYMMDDTHHMMSSZ/part-*.parquet
//
// Every file is written under a hidden temporary name, synced, renamed and
// its folder synced, so a reader never sees half a file. A partition or
// snapshot counts as complete once its _SUCCESS marker is written. Names
// that start with "." or "_" are never data.
//
// An events file holds row groups of up to 128Ki rows, one page per
// column chunk; int64 and timestamp columns are DELTA_BINARY_PACKED,
// strings dictionary-encoded, pages snappy-compressed. Files written by
// import and compaction are clustered by key (see EventColumns.SortByKey).
package warehouse
