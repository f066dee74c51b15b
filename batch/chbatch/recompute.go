package chbatch

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
)

const hourMillis = 3600 * 1000

// RecomputeSQL returns the one statement that computes the whole catalog as
// of cutoff inside ClickHouse: INSERT INTO the snapshot's staging table
// SELECT … GROUP BY key over events. Recompute runs it and then swaps the
// staging table's partition into profiles.
//
// The semantics are those of reference.Evaluate:
//   - a tag with window W aggregates the events with cutoff−W ≤ ts < cutoff,
//     a lifetime tag those with ts < cutoff (ts is Int64 milliseconds);
//   - with an id field, events with the same key and id count once: the
//     first by (ts, _partition, _offset), chosen among all events before the
//     cutoff (ORDER BY … LIMIT 1 BY key, id), so a copy outside a window
//     still hides a later copy inside it, exactly as the reference does;
//   - count and count_distinct are 0 when empty, every other aggregate NULL
//     (if(countIf(c) = 0, NULL, …) types as Nullable(T) on 18.16);
//   - first/last take argMin/argMax over the tuple (ts, _partition,
//     _offset), which 18.16 compares element by element;
//   - avg divides the sum as Float64 by the count, as Go does;
//   - mode is the most frequent value, ties to the smallest: a subquery per
//     mode tag counts (key, value) and takes argMin(value, (-count, value)),
//     joined back with ANY LEFT JOIN; its column is Nullable, and 18.16 fills
//     a Nullable column of a missed join with NULL, which is the empty value.
//     (sumMap would count in one pass, but 18.16 rejects String keys, and
//     18.16 has one JOIN per SELECT, so the joins nest.)
//   - the profiles are the entities with at least one event some aggregate
//     window covers (any event before the cutoff if a tag is lifetime);
//   - rules are computed in the outermost SELECT over the aggregated
//     columns, in cat.RuleOrder; a rule that uses another rule inlines it.
func RecomputeSQL(cat *schemas.Catalog, cutoff schemas.Timestamp) string {
	return recomputeSQL(cat, cutoff, stagingName(ProfilesTable, "recompute", cutoff))
}

// stagingName names the staging table of one write. The name is fixed for a
// table, purpose and partition, so a crashed run's leftover is dropped by
// the next run of the same write. Writes of the same partition must not run
// concurrently (jobs never overlap themselves).
func stagingName(table, purpose string, at schemas.Timestamp) string {
	return table + "_" + purpose + "_" + strconv.FormatInt(int64(at), 10)
}

func recomputeSQL(cat *schemas.Catalog, cutoff schemas.Timestamp, stage string) string {
	p := newPlan(cat, int64(cutoff))
	key := q(cat.KeyField().Name)

	// Layer 1: the aggregates (all but mode) in one GROUP BY over events.
	cols := []string{key}
	var aggs []string
	for i := range cat.Tags {
		t := &cat.Tags[i]
		if t.IsRule() || t.Agg == schemas.AggMode {
			continue
		}
		aggs = append(aggs, p.aggregate(t)+" AS "+q(t.Name))
		cols = append(cols, q(t.Name))
	}
	var b strings.Builder
	b.WriteString("SELECT\n    " + strings.Join(append([]string{key}, aggs...), ",\n    "))
	b.WriteString("\nFROM\n(\n" + indent(p.source()) + "\n)\nGROUP BY " + key)
	if !cat.HasLifetime() {
		// Only entities with an event in the longest window have a profile.
		b.WriteString("\nHAVING countIf(" + q(p.timeName) + " >= " + intLiteral(p.lo) + ") > 0")
	}
	body := b.String()

	// Layer 2: one ANY LEFT JOIN per mode tag.
	for i := range cat.Tags {
		t := &cat.Tags[i]
		if t.IsRule() || t.Agg != schemas.AggMode {
			continue
		}
		cols = append(cols, q(t.Name))
		// Newer releases require an alias on every joined subquery.
		body = "SELECT " + strings.Join(cols, ", ") + "\nFROM\n(\n" + indent(body) + "\n) AS `_l`\nANY LEFT JOIN\n(\n" +
			indent(p.mode(t)) + "\n) AS `_r` USING " + key
	}

	// Layer 3: rules, in catalog column order, then the insert.
	var rule func(*schemas.Node) string
	rule = func(r *schemas.Node) string {
		if t, ok := cat.Tag(r.Name); ok && t.IsRule() {
			return "(" + exprSQL(t.Rule.Root, rule) + ")"
		}
		return q(r.Name)
	}
	sec := int64(cutoff) / 1000
	out := []string{"toDateTime(" + strconv.FormatInt(sec, 10) + ")", key}
	names := []string{q(ColSnapshot), key}
	for i := range cat.Tags {
		t := &cat.Tags[i]
		names = append(names, q(t.Name))
		if t.IsRule() {
			out = append(out, exprSQL(t.Rule.Root, rule)+" AS "+q(t.Name))
		} else {
			out = append(out, q(t.Name))
		}
	}
	out = append(out, clickhouse.QuoteString(cat.Hash))
	names = append(names, q(ColCatalogHash))

	return "INSERT INTO " + q(stage) + " (" + strings.Join(names, ", ") + ")\nSELECT\n    " +
		strings.Join(out, ",\n    ") + "\nFROM\n(\n" + indent(body) + "\n)"
}

// plan holds what the pieces of one recompute statement share.
type plan struct {
	cat      *schemas.Catalog
	cutoff   int64
	timeName string
	// lo is the earliest event time any aggregate window needs (when no tag
	// is lifetime).
	lo int64
}

func newPlan(cat *schemas.Catalog, cutoff int64) *plan {
	return &plan{cat: cat, cutoff: cutoff, timeName: cat.Fields[cat.Time].Name, lo: cutoff - cat.LongestWindow()}
}

// source is the SELECT of the events the statement reads: the columns the
// tags use, before the cutoff, pruned by _hour partition, de-duplicated on
// the id field when the catalog has one.
func (p *plan) source() string {
	c := p.cat
	need := map[int]bool{c.Key: true, c.Time: true}
	if c.ID >= 0 {
		need[c.ID] = true
	}
	for i := range c.Tags {
		t := &c.Tags[i]
		if t.IsRule() {
			continue
		}
		if t.Of >= 0 {
			need[t.Of] = true
		}
		if t.Where != nil {
			for _, name := range t.Where.Refs {
				if f, ok := c.Field(name); ok {
					need[f.Index] = true
				}
			}
		}
	}
	var cols []string
	for i := range c.Fields {
		if need[i] {
			cols = append(cols, q(c.Fields[i].Name))
		}
	}
	cols = append(cols, q(ColPartition), q(ColOffset))

	ts := q(p.timeName)
	// Events of the hour that holds cutoff−1ms are the last ones needed.
	hourEnd := (floorDiv(p.cutoff-1, hourMillis) + 1) * 3600
	where := []string{q(ColHour) + " < toDateTime(" + strconv.FormatInt(hourEnd, 10) + ")"}
	// Without lifetime tags only the longest window is read, unless ids
	// must be de-duplicated over everything before the cutoff.
	bounded := !c.HasLifetime() && c.ID < 0
	if bounded && p.lo >= 0 {
		hourStart := floorDiv(p.lo, hourMillis) * 3600
		where = append([]string{q(ColHour) + " >= toDateTime(" + strconv.FormatInt(hourStart, 10) + ")"}, where...)
	}
	if bounded {
		where = append(where, ts+" >= "+intLiteral(p.lo))
	}
	where = append(where, ts+" < "+intLiteral(p.cutoff))
	s := "SELECT " + strings.Join(cols, ", ") + "\nFROM " + q(EventsTable) + "\nWHERE " + strings.Join(where, " AND ")
	if c.ID >= 0 {
		key, id := q(c.KeyField().Name), q(c.Fields[c.ID].Name)
		s += "\nORDER BY " + strings.Join([]string{key, id, ts, q(ColPartition), q(ColOffset)}, ", ") +
			"\nLIMIT 1 BY " + key + ", " + id
	}
	return s
}

// cond is the filter of an aggregate tag: its window and its where
// expression; "" takes every event of the source.
func (p *plan) cond(t *schemas.Tag) string {
	var parts []string
	if t.Window > 0 {
		parts = append(parts, q(p.timeName)+" >= "+intLiteral(p.cutoff-t.Window))
	}
	if t.Where != nil {
		parts = append(parts, SQL(t.Where.Root))
	}
	return strings.Join(parts, " AND ")
}

// agg renders an aggregate function call, with the -If combinator when
// there is a condition.
func agg(fn, args, cond string) string {
	if cond == "" {
		return fn + "(" + args + ")"
	}
	if args == "" {
		return fn + "If(" + cond + ")"
	}
	return fn + "If(" + args + ", " + cond + ")"
}

// aggregate renders the expression of one non-mode aggregate tag.
func (p *plan) aggregate(t *schemas.Tag) string {
	c := p.cond(t)
	orEmpty := func(expr string) string {
		return "if(" + agg("count", "", c) + " = 0, NULL, " + expr + ")"
	}
	var x string
	if t.Of >= 0 {
		x = q(p.cat.Fields[t.Of].Name)
	}
	order := "(" + q(p.timeName) + ", " + q(ColPartition) + ", " + q(ColOffset) + ")"
	switch t.Agg {
	case schemas.AggCount:
		return "toInt64(" + agg("count", "", c) + ")"
	case schemas.AggCountDistinct:
		return "toInt64(" + agg("uniqExact", x, c) + ")"
	case schemas.AggSum:
		return orEmpty(agg("sum", x, c))
	case schemas.AggAvg:
		return orEmpty("toFloat64(" + agg("sum", x, c) + ") / toFloat64(" + agg("count", "", c) + ")")
	case schemas.AggMin:
		return orEmpty(agg("min", x, c))
	case schemas.AggMax:
		return orEmpty(agg("max", x, c))
	case schemas.AggFirst:
		return orEmpty(agg("argMin", x+", "+order, c))
	case schemas.AggLast:
		return orEmpty(agg("argMax", x+", "+order, c))
	}
	panic(fmt.Sprintf("chbatch: aggregate %q has no SQL", t.Agg))
}

// mode renders the subquery of one mode tag: key and the tag's value.
// `_v` and `_n` cannot clash with catalog names, which start with a letter.
func (p *plan) mode(t *schemas.Tag) string {
	key := q(p.cat.KeyField().Name)
	inner := "SELECT " + key + ", " + q(p.cat.Fields[t.Of].Name) + " AS `_v`, count() AS `_n`\nFROM\n(\n" +
		indent(p.source()) + "\n)"
	if c := p.cond(t); c != "" {
		inner += "\nWHERE " + c
	}
	inner += "\nGROUP BY " + key + ", `_v`"
	return "SELECT " + key + ", toNullable(argMin(`_v`, (negate(`_n`), `_v`))) AS " + q(t.Name) +
		"\nFROM\n(\n" + indent(inner) + "\n)\nGROUP BY " + key
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

func floorDiv(a, b int64) int64 {
	d := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		d--
	}
	return d
}

// Recompute computes the snapshot as of cutoff inside ClickHouse from the
// events table and replaces the snapshot's partition of profiles with it
// atomically: the statement of RecomputeSQL fills a staging table, and
// ALTER TABLE profiles REPLACE PARTITION swaps it in, so running it again
// leaves the same rows. The schema must exist (EnsureSchema).
func Recompute(ctx context.Context, c *clickhouse.Client, cat *schemas.Catalog, cutoff schemas.Timestamp) error {
	sec, err := snapshotSeconds(cutoff)
	if err != nil {
		return fmt.Errorf("recomputing %s: %w", cat.Name, err)
	}
	stage := stagingName(ProfilesTable, "recompute", cutoff)
	return withStaging(ctx, c, ProfilesTable, stage, []int64{sec}, func() error {
		if err := c.Exec(ctx, recomputeSQL(cat, cutoff, stage)); err != nil {
			return fmt.Errorf("recomputing snapshot %s of %s: %w", cutoff, cat.Name, err)
		}
		return nil
	})
}

// withStaging creates the staging table as a copy of target's structure,
// lets fill write it, replaces target's partitions (by ID, the unix seconds
// of a DateTime partition key) with the staging table's, and drops the
// staging table, also when something failed. A partition the staging
// table does not have is emptied, which is what an empty write means. Each
// partition is replaced atomically; a failure part way leaves the earlier
// ones replaced, and a retry converges.
func withStaging(ctx context.Context, c *clickhouse.Client, target, stage string, partitionIDs []int64, fill func() error) (err error) {
	drop := "DROP TABLE IF EXISTS " + q(stage)
	if err := c.Exec(ctx, drop); err != nil {
		return fmt.Errorf("dropping old staging table %s: %w", stage, err)
	}
	if err := c.Exec(ctx, "CREATE TABLE "+q(stage)+" AS "+q(target)); err != nil {
		return fmt.Errorf("creating staging table %s: %w", stage, err)
	}
	defer func() {
		// The caller's context may be done; dropping must still happen.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := c.Exec(dctx, drop); derr != nil && err == nil {
			err = fmt.Errorf("dropping staging table %s: %w", stage, derr)
		}
	}()
	if err := fill(); err != nil {
		return err
	}
	for _, id := range partitionIDs {
		replace := fmt.Sprintf("ALTER TABLE %s REPLACE PARTITION ID %s FROM %s",
			q(target), clickhouse.QuoteString(strconv.FormatInt(id, 10)), q(stage))
		if err := c.Exec(ctx, replace); err != nil {
			return fmt.Errorf("replacing partition %d of %s: %w", id, target, err)
		}
	}
	return nil
}
