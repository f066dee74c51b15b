// Package stream is the speed layer: a member of the consumer group
// "portrait-speed" that decodes the JSON events of the events topic,
// dead-letters the records it cannot use, and keeps every owned user's
// tags fresh with the incremental executor (stream/incremental), its state
// in a Pebble store (stream/state).
//
// Exactly-once state: a checkpoint (every CheckpointInterval, or sooner
// when MaxDirtyUsers changed) writes the changed parts of every changed
// user (only the time buckets an event touched or eviction dropped, and
// the lifetime base when eviction grew it: store format 2) and every owned
// partition's next offset and watermark in one synced Pebble batch. On
// every assignment a partition resumes from the next offset in the store
// (the session's offsets are reset to it; the group's committed offsets
// are written for monitoring only), so a crash replays exactly the records
// after the last checkpoint: none lost, none counted twice.
//
// Ownership: state is namespaced by Kafka partition, and the producer's
// key hash puts each user on one partition. A rebalance checkpoints
// (Cleanup), then drops the partitions no longer owned from memory; their
// state stays in this instance's store and is picked up again, with its
// own offset, if the partition comes back. An instance that receives a
// partition it never owned rebuilds it from the oldest retained offset.
//
// Watermarks are kept per partition: lateness (older than the kept
// buckets: the longest window plus Grace) depends only on the partition's
// own order, so a replay decides it the same way. The live values are as
// of the end of the bucket holding the newest watermark of all owned
// partitions.
//
// Serving while ingesting: Lookup, ValuesAsOf and ProfilesAsOf are safe
// from any goroutine at any time. Events are applied in chunks, each
// event under its own user's lock, and a checkpoint encodes user by user,
// so a lookup waits at most for one user's update, never for a batch or
// a checkpoint. Partitions are independent: each has its own writer lock,
// so the partitions' events are applied in parallel, and a checkpoint
// takes one partition at a time apart while the others keep applying.
// The long CPU-bound loops (decoding, applying, encoding, loading,
// rebasing) also yield their processor every 50–100 µs of work (package yield),
// so that a lookup does not wait for Go's 10 ms preemption either.
// Positions, Applied and Lag tell how far consumption got
// (a harness over a pre-filled topic waits for Applied to reach the
// record count, or for Ready with Lag 0).
//
// Decoding (internal/eventjson): a flat JSON object without escapes is
// scanned once, straight into the catalog's field slots (unknown fields
// skipped, values converted with schemas.ConvertJSON's semantics);
// anything else goes through encoding/json, which produces the rejection
// reason.
//
// Records go to the dead-letter topic (internal/dlq) when they are larger
// than MaxRecordBytes, are not JSON objects, miss a field or break its
// type or enum, carry a message key other than their key field, or lie
// further than ClockSkew in the future. They are produced synchronously
// before the partition's offset moves past them.
//
// Batch snapshots (rebase.go): Rebase makes the newest batch snapshot's
// lifetime partials (its _state/) the base of every user's lifetime tags,
// merged with the speed layer's buckets from the snapshot's cutoff on;
// users the speed layer does not hold are served from the snapshot alone,
// and Snapshot reports the cutoff. Each user stores where its base ends,
// so a restart keeps the merge exact; call Rebase (or WatchSnapshots) on
// start and after each recompute.
//
// Reconcile support: late and duplicate events are remembered per user
// (drift.go; written with the checkpoint that covers them), dead-lettered
// records are read back from the DLQ topic (RefreshDriftMarks), and
// DriftMarks hands both to the reconciler (package serving).
// RebuildUsers (repair.go) replaces drifting users' state with state
// rebuilt from their warehouse events and a snapshot's lifetime base, in
// one checkpoint. OpenState opens a stopped instance's store without
// Kafka (portrait reconcile --state).
//
// Metrics:
//
//	portrait_speed_events_consumed_total        records read
//	portrait_speed_events_applied_total         events folded into state
//	portrait_speed_events_late_total            events older than the kept buckets
//	portrait_speed_events_duplicate_total       events with an id already applied
//	portrait_speed_events_dlq_total{reason}     records dead-lettered
//	portrait_speed_checkpoint_duration_seconds  histogram of checkpoint time
//	portrait_speed_checkpoint_users_total       users written (their changed parts)
//	portrait_speed_checkpoint_size_bytes        histogram of bytes committed per checkpoint
//	portrait_speed_state_users                  users in memory
//	portrait_speed_state_bytes                  disk space of the Pebble store (at start and after each checkpoint)
//	portrait_speed_watermark_seconds            newest event time applied
//	portrait_speed_consumer_lag_records{partition}
//	                                            records behind the high-water mark, per owned
//	                                            partition: set on assignment, removed when the
//	                                            partition is revoked (none before the first
//	                                            assignment: ownership is not known until then)
package stream
