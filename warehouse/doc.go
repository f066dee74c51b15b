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
package warehouse
