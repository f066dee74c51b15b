// Package landing is the landing path of portrait: the consumer group
// portrait-landing copies the events topic into the Hive-style Parquet
// warehouse, exactly once, closes event-time hours with _SUCCESS markers
// and loads closed hours into ClickHouse's events table.
//
// # Files
//
// Each claimed partition decodes and validates its records as the speed
// layer does (same rules, same DLQ reasons; bad records go to the DLQ
// through internal/dlq, synchronously, before the position moves past
// them) and buffers the good ones by event-time hour, column by column
// (warehouse.EventColumns: typed slices, no boxed values; plain flat
// records are decoded in one pass straight into them, everything else
// through internal/eventjson, which defines what is valid). When the
// buffered JSON reaches RollBytes or the oldest buffered record is
// RollAge old, it commits: one file per hour,
//
//	<warehouse>/events/dt=YYYY-MM-DD/hour=HH/part-<p>-<first>-<last>.parquet
//
// holding every buffered record of that partition and hour in offset order
// (first and last are their offsets), with _partition, _offset and
// _ingest_time columns; all of a commit's files are written under temp
// names and fsynced, then renamed, then each hour folder (and any folder
// created for it, in its parent) fsynced once (warehouse.WriteFilesAtomic,
// warehouse.WriteEventColumns). Only then does the
// partition's position (<warehouse>/_landing/partitions/<topic>-<p>.json:
// next offset and newest event time landed) move, and after it the
// group's committed offset (informational). A commit is written by a
// goroutine of its own while the partition decodes on into fresh buffers
// (so Parquet writing overlaps decoding); a partition has at most one
// commit in flight, so its commits stay in order, and at most twice
// RollBytes buffered. What the partition knows of a commit (committed
// offsets, event time reached, the hours to close) changes only once the
// commit is durable; a partition is never idle with a commit in flight.
//
// # Exactly once
//
// A crash can fall between any two of those steps, so a restarted
// partition resumes at its position, which is never past an uncommitted
// record, and may read records that are already in files. For every
// (partition, hour) the highest offset in the committed file names is the
// point below which every record of that partition and hour is in the
// warehouse (its files are written in offset order and each holds all
// records of its range for its hour); a record read again at or below it
// is dropped. The check is per hour rather than per partition because a
// commit writes several hours' files one after the other: after a crash
// between two of them, the highest offset of the partition overall would
// skip the records of the hour not yet written. Without a position (a
// new or wiped _landing folder) a partition starts at the oldest record
// and the same rule drops whatever the files hold. Records land once, by
// (partition, offset); DLQ records are at least once (a record may be
// dead-lettered again after a crash; its headers carry partition and
// offset to de-duplicate).
//
// # Watermark and hour closing
//
// A partition's event time reached is the newest event time in its
// committed files. The landing watermark is the least of them over the
// owned partitions, leaving out idle ones: a partition caught up with its
// high watermark, with nothing buffered, that got no record for
// IdleTimeout (when all are idle, the greatest). The clock is Config.Now.
// Every CloseInterval, each hour written since it was last closed whose
// end plus AllowedLateness the watermark has passed is queued for loading
// (<warehouse>/_landing/reload/<hour ms>.json, durable) and then gets its
// _SUCCESS marker (file list, row counts) under the warehouse lock. A
// straggler for a closed hour lands as a new file like any other; the
// hour is then pending again, and the next pass rewrites its marker and
// queues it again (counted as re-opened). Hour closing assumes one landing
// process per warehouse (the warehouse is one file system; the lock is an
// flock): its watermark covers the partitions it owns.
//
// # ClickHouse
//
// With Config.ClickHouse set, queued hours are loaded with
// chbatch.LoadEvents from exactly the files the hour's marker lists. It
// inserts into a staging table and moves the result into events with
// ALTER TABLE … REPLACE PARTITION for the hour's _hour partition, which
// both ClickHouse 18.16 and current releases do atomically. Loading an
// hour is therefore idempotent: a re-load after stragglers, or after a
// crash between the load and taking the hour off the queue, replaces the
// hour's rows with the same or a larger set, never adds them twice. The
// queue entry is removed only after the load succeeded; a failed load is
// retried on the next pass. Corrupt files are quarantined
// (warehouse.Quarantine) and the hour is loaded from what remains.
//
// # Metrics
//
//	portrait_landing_records_consumed_total     records read
//	portrait_landing_records_skipped_total      records read again and dropped (already landed)
//	portrait_landing_rows_total                 rows written to files
//	portrait_landing_files_total                files committed
//	portrait_landing_written_bytes_total        bytes of files committed
//	portrait_landing_dlq_records_total{reason}  records dead-lettered
//	portrait_landing_watermark_seconds          the landing watermark
//	portrait_landing_hours_closed_total         hours closed
//	portrait_landing_hours_reopened_total       closed hours closed again after stragglers
//	portrait_landing_hours_loaded_total         hours loaded into ClickHouse
//	portrait_landing_load_errors_total          failed loads (retried)
//	portrait_landing_reload_queue_hours         hours waiting for ClickHouse
//	portrait_landing_files_quarantined_total    corrupt files moved to quarantine
//	portrait_landing_flush_duration_seconds     time to commit a partition's buffer
//	portrait_landing_consumer_lag_records{partition}  records between the next offset to land and the
//	                                            high-water mark, per owned partition (set on
//	                                            assignment, removed on revocation)
package landing
