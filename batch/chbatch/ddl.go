package chbatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
)

// The tables and the view portrait keeps in ClickHouse.
const (
	EventsTable        = "events"
	ProfilesTable      = "profiles"
	ProfilesLatestView = "profiles_latest"
	TagDriftTable      = "tag_drift"
	JobRunsTable       = "job_runs"
)

// Columns the tables hold besides the catalog's fields and tags. Catalog
// names are [a-z][a-z0-9_]* and never start with "_", and the parser
// reserves "snapshot" and "catalog_hash", so none of these can clash.
const (
	ColPartition   = "_partition"   // Kafka partition (or file ordinal) of the event
	ColOffset      = "_offset"      // Kafka offset (or line) of the event
	ColIngestTime  = "_ingest_time" // unix ms when the hour was loaded
	ColHour        = "_hour"        // start of the event-time hour: the partition key
	ColSnapshot    = "snapshot"     // the snapshot's cutoff: the partition key
	ColCatalogHash = "catalog_hash" // schemas.Catalog.Hash of the catalog that computed the row
)

// Column is one column of a generated table.
type Column struct {
	Name string
	Type string
	// fromCatalog marks the columns whose type the catalog decides;
	// EnsureSchema checks that existing ones still have it.
	fromCatalog bool
}

// table is the generated definition of one table.
type table struct {
	Name    string
	Columns []Column
	// Engine is everything after "ENGINE = ".
	Engine string
}

// FieldType is the ClickHouse type of an event field or of a non-null
// value of that type. Timestamps are Int64 unix milliseconds: DateTime
// holds whole seconds only and DateTime64 does not exist on 18.16, while
// Int64 keeps every millisecond exact and compares and sums like the Go
// value. Bools are UInt8 (0/1), as ClickHouse has no Bool type on 18.16.
func FieldType(t schemas.Type) string {
	switch t {
	case schemas.TypeInt64, schemas.TypeTimestamp:
		return "Int64"
	case schemas.TypeFloat64:
		return "Float64"
	case schemas.TypeString:
		return "String"
	case schemas.TypeBool:
		return "UInt8"
	}
	panic(fmt.Sprintf("chbatch: no ClickHouse type for %s", t))
}

// TagType is the ClickHouse type of a tag's column in profiles: the
// value's type, Nullable when the tag can be empty.
func TagType(t *schemas.Tag) string {
	ct := FieldType(t.Type)
	if t.Nullable {
		return "Nullable(" + ct + ")"
	}
	return ct
}

// eventsTable is one row per event. It is partitioned by the event-time
// hour because the hour is the unit the warehouse closes and LoadEvents
// replaces (REPLACE PARTITION works on whole partitions only), and a
// recompute prunes partitions by _hour to read just the hours its longest
// window needs. It is sorted by (key, time) so that one entity's events are
// stored together: lookups of a user read few granules, and the key and
// time columns compress well.
func eventsTable(cat *schemas.Catalog) table {
	t := table{Name: EventsTable}
	for _, f := range cat.Fields {
		t.Columns = append(t.Columns, Column{Name: f.Name, Type: FieldType(f.Type), fromCatalog: true})
	}
	t.Columns = append(t.Columns,
		Column{Name: ColPartition, Type: "Int32"},
		Column{Name: ColOffset, Type: "Int64"},
		Column{Name: ColIngestTime, Type: "Int64"},
		Column{Name: ColHour, Type: "DateTime('UTC')"},
	)
	t.Engine = fmt.Sprintf("MergeTree PARTITION BY %s ORDER BY (%s, %s)",
		q(ColHour), q(cat.KeyField().Name), q(cat.Fields[cat.Time].Name))
	return t
}

// profilesTable is one row per entity and snapshot, one typed column per
// tag. A snapshot is one partition, so publishing it again replaces it
// atomically and retention drops old snapshots by partition.
func profilesTable(cat *schemas.Catalog) table {
	key := cat.KeyField()
	t := table{Name: ProfilesTable}
	t.Columns = append(t.Columns,
		Column{Name: ColSnapshot, Type: "DateTime('UTC')"},
		Column{Name: key.Name, Type: FieldType(key.Type), fromCatalog: true},
	)
	for i := range cat.Tags {
		t.Columns = append(t.Columns, Column{Name: cat.Tags[i].Name, Type: TagType(&cat.Tags[i]), fromCatalog: true})
	}
	t.Columns = append(t.Columns, Column{Name: ColCatalogHash, Type: "String"})
	t.Engine = fmt.Sprintf("MergeTree PARTITION BY %s ORDER BY %s", q(ColSnapshot), q(key.Name))
	return t
}

// tagDriftTable holds the reconciler's report: one row per snapshot and tag.
// A re-run of the reconciler for the same snapshot writes newer rows that
// replace the older ones on merge (read with FINAL or argMax(…, computed_at)).
var tagDriftTable = table{
	Name: TagDriftTable,
	Columns: []Column{
		{Name: "snapshot", Type: "DateTime('UTC')"},
		{Name: "tag", Type: "String"},
		{Name: "users_compared", Type: "Int64"},
		{Name: "equal", Type: "Int64"},
		{Name: "different", Type: "Int64"},
		{Name: "only_batch", Type: "Int64"},
		{Name: "only_speed", Type: "Int64"},
		{Name: "max_abs_error", Type: "Float64"},
		{Name: "mean_abs_error", Type: "Float64"},
		{Name: "sample", Type: "String"},
		{Name: "causes", Type: "String"},
		{Name: "computed_at", Type: "DateTime('UTC')"},
	},
	Engine: "ReplacingMergeTree(`computed_at`) PARTITION BY toYYYYMM(`snapshot`) ORDER BY (`snapshot`, `tag`)",
}

// jobRunsTable records every job run. A run may be written when it starts
// (status running) and again when it ends; the row with the later `ended`
// replaces the earlier one on merge.
var jobRunsTable = table{
	Name: JobRunsTable,
	Columns: []Column{
		{Name: "job", Type: "String"},
		{Name: "run_id", Type: "String"},
		{Name: "attempt", Type: "Int64"},
		{Name: "started", Type: "DateTime('UTC')"},
		{Name: "ended", Type: "DateTime('UTC')"},
		{Name: "status", Type: "String"},
		{Name: "rows", Type: "Int64"},
		{Name: "error", Type: "String"},
	},
	Engine: "ReplacingMergeTree(`ended`) PARTITION BY toYYYYMM(`started`) ORDER BY (`job`, `run_id`, `attempt`)",
}

func tables(cat *schemas.Catalog) []table {
	return []table{eventsTable(cat), profilesTable(cat), tagDriftTable, jobRunsTable}
}

func (t table) createSQL() string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS ")
	b.WriteString(q(t.Name))
	b.WriteString(" (\n")
	for i, c := range t.Columns {
		b.WriteString("    ")
		b.WriteString(q(c.Name))
		b.WriteByte(' ')
		b.WriteString(c.Type)
		if i < len(t.Columns)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(") ENGINE = ")
	b.WriteString(t.Engine)
	return b.String()
}

// viewSQL creates profiles_latest: the rows of the newest snapshot. A view
// fixes its column list when it is created (checked on 18.16), so
// EnsureSchema recreates it whenever profiles gains columns.
func viewSQL() string {
	return fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s AS SELECT * FROM %s WHERE %s = (SELECT max(%s) FROM %s)",
		q(ProfilesLatestView), q(ProfilesTable), q(ColSnapshot), q(ColSnapshot), q(ProfilesTable))
}

// DDL returns the statements that create every table and the view for a
// catalog, in the order to run them. Each is idempotent (IF NOT EXISTS);
// EnsureSchema also migrates tables that exist already.
func DDL(cat *schemas.Catalog) []string {
	var out []string
	for _, t := range tables(cat) {
		out = append(out, t.createSQL())
	}
	return append(out, viewSQL())
}

// EnsureSchema creates the tables and the view that are missing, adds the
// columns a newer catalog needs to existing tables (ALTER TABLE … ADD
// COLUMN; older rows read the column's default: NULL for nullable tags, 0
// otherwise), and recreates profiles_latest when its columns no longer
// match profiles. A catalog column whose type changed is an error: that
// needs a deliberate migration (rename or drop the old column).
func EnsureSchema(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog) error {
	var problems []string
	for _, t := range tables(cat) {
		if err := c.Exec(ctx, t.createSQL()); err != nil {
			return fmt.Errorf("creating table %s: %w", t.Name, err)
		}
		have, err := tableColumns(ctx, c, t.Name)
		if err != nil {
			return err
		}
		for _, col := range t.Columns {
			typ, ok := have[col.Name]
			if !ok {
				alter := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", q(t.Name), q(col.Name), col.Type)
				if err := c.Exec(ctx, alter); err != nil {
					return fmt.Errorf("adding column %s to %s: %w", col.Name, t.Name, err)
				}
				continue
			}
			if col.fromCatalog && typ != col.Type {
				problems = append(problems, fmt.Sprintf("%s.%s is %s, catalog %s wants %s", t.Name, col.Name, typ, cat.Name, col.Type))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("ClickHouse schema does not match the catalog: %s", strings.Join(problems, "; "))
	}
	return ensureView(ctx, c)
}

func ensureView(ctx context.Context, c *clickhouse.Client) error {
	prof, err := tableColumnNames(ctx, c, ProfilesTable)
	if err != nil {
		return err
	}
	view, err := tableColumnNames(ctx, c, ProfilesLatestView)
	if err != nil {
		return err
	}
	// system.columns has no position column on 18.16: compare the sets.
	slices.Sort(prof)
	slices.Sort(view)
	if slices.Equal(prof, view) {
		return nil
	}
	if len(view) > 0 {
		if err := c.Exec(ctx, "DROP TABLE IF EXISTS "+q(ProfilesLatestView)); err != nil {
			return fmt.Errorf("dropping stale view %s: %w", ProfilesLatestView, err)
		}
	}
	if err := c.Exec(ctx, viewSQL()); err != nil {
		return fmt.Errorf("creating view %s: %w", ProfilesLatestView, err)
	}
	return nil
}

// tableColumns returns the columns of a table in the client's database by
// name, with their types as system.columns writes them.
func tableColumns(ctx context.Context, c *clickhouse.Client, name string) (map[string]string, error) {
	rows, err := c.Conn().Query(ctx, fmt.Sprintf(
		"SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = %s",
		clickhouse.QuoteString(name)))
	if err != nil {
		return nil, fmt.Errorf("listing columns of %s: %w", name, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return nil, fmt.Errorf("listing columns of %s: %w", name, err)
		}
		out[n] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing columns of %s: %w", name, err)
	}
	return out, nil
}

// tableColumnNames returns a table's column names (none when the table
// does not exist).
func tableColumnNames(ctx context.Context, c *clickhouse.Client, name string) ([]string, error) {
	rows, err := c.Conn().Query(ctx, fmt.Sprintf(
		"SELECT name FROM system.columns WHERE database = currentDatabase() AND table = %s",
		clickhouse.QuoteString(name)))
	if err != nil {
		return nil, fmt.Errorf("listing columns of %s: %w", name, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("listing columns of %s: %w", name, err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing columns of %s: %w", name, err)
	}
	return out, nil
}

// errBadCutoff is wrapped by the errors of calls given a cutoff that
// cannot name a snapshot partition.
var errBadCutoff = errors.New("bad cutoff")

// snapshotSeconds returns the cutoff as the unix seconds of the snapshot
// partition. The snapshot column is DateTime (whole seconds, from 1970 to
// 2106), so the cutoff must be a whole second in that range.
func snapshotSeconds(cutoff schemas.Timestamp) (int64, error) {
	if cutoff%1000 != 0 || cutoff < 0 || cutoff/1000 > 1<<32-1 {
		return 0, fmt.Errorf("%w %s (%d ms): want a whole second between 1970 and 2106", errBadCutoff, cutoff, int64(cutoff))
	}
	return int64(cutoff) / 1000, nil
}

// q quotes an identifier.
func q(name string) string { return clickhouse.QuoteIdent(name) }
