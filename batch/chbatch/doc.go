// Package chbatch is portrait's ClickHouse executor and publisher: it
// generates the ClickHouse tables from a catalog (events, profiles, the
// profiles_latest view, tag_drift, job_runs) and keeps them migrated,
// computes a whole profile snapshot as one INSERT … SELECT … GROUP BY inside
// ClickHouse (the batch path for warehouses that outgrow one machine),
// publishes snapshots computed elsewhere, and loads closed event hours.
//
// Every write is idempotent: rows go to a staging table first and replace
// their partition of the target with ALTER TABLE … REPLACE PARTITION, so a
// re-run of the same snapshot or hour leaves the same rows, never twice as
// many.
//
// The SQL runs on Debian's ClickHouse 18.16 (what CI has) and on current
// releases; the comments next to each construct say which 18.16 limit shaped
// it (see also docs/clickhouse-compat.md). Names come from a validated
// catalog and are always quoted with clickhouse.QuoteIdent; literals from
// expressions go through clickhouse.QuoteString or typed conversions.
package chbatch
