package chbatch

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
)

// taobaoVariant parses schemas/catalogs/taobao.yaml after edit changed its
// text.
func taobaoVariant(t *testing.T, edit func(string) string) *schemas.Catalog {
	t.Helper()
	data, err := os.ReadFile(catalogPath("taobao"))
	require.NoError(t, err)
	cat, err := schemas.Parse([]byte(edit(string(data))))
	require.NoError(t, err)
	return cat
}

func dropLines(text string, subs ...string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		keep := true
		for _, s := range subs {
			if strings.Contains(line, s) {
				keep = false
			}
		}
		if keep {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func columnTypes(t *testing.T, c *clickhouse.Client, table string) map[string]string {
	t.Helper()
	cols, err := tableColumns(testContext(t), c, table)
	require.NoError(t, err)
	return cols
}

// TestEnsureSchemaMigrates starts from an older catalog, publishes a
// snapshot, then moves to a catalog with a new event field and two new
// tags: EnsureSchema must add exactly the missing columns, keep the old
// rows readable and rebuild profiles_latest.
func TestEnsureSchemaMigrates(t *testing.T) {
	old := taobaoVariant(t, func(s string) string { return dropLines(s, "carts_24h:", "last_seen:") })
	cur := taobaoVariant(t, func(s string) string {
		return strings.Replace(s, "    ts: timestamp\n", "    ts: timestamp\n    source: string\n", 1)
	})
	require.Len(t, cur.Tags, len(old.Tags)+2)

	ctx, c := setup(t, old)
	require.NoError(t, EnsureSchema(ctx, c, old), "EnsureSchema twice")
	require.NotContains(t, columnTypes(t, c, ProfilesTable), "carts_24h")

	o := gen.Defaults(5)
	o.Events, o.Span = 300, day/2
	events := gen.Events(old, o)
	s1 := o.Start + day
	want1 := reference.Evaluate(old, events, s1)
	require.NoError(t, PublishProfiles(ctx, c, old, s1, want1))

	require.NoError(t, EnsureSchema(ctx, c, cur))
	prof := columnTypes(t, c, ProfilesTable)
	require.Equal(t, "Int64", prof["carts_24h"])
	require.Equal(t, "Nullable(Int64)", prof["last_seen"])
	require.Equal(t, "String", columnTypes(t, c, EventsTable)["source"])
	view := columnTypes(t, c, ProfilesLatestView)
	require.Equal(t, prof, view, "profiles_latest has the new columns")
	require.NoError(t, EnsureSchema(ctx, c, cur), "EnsureSchema again after migrating")

	// Rows of the old snapshot read the new columns' defaults.
	got1, err := ReadProfiles(ctx, c, cur, s1)
	require.NoError(t, err)
	require.Len(t, got1, len(want1))
	carts, _ := cur.Tag("carts_24h")
	last, _ := cur.Tag("last_seen")
	for _, p := range got1 {
		require.Equal(t, int64(0), p.Values[carts.Index])
		require.Nil(t, p.Values[last.Index])
	}

	// The new catalog publishes and recomputes into the migrated tables.
	curEvents := make([]schemas.Event, len(events))
	for i, e := range events {
		v := append(append([]any{}, e.Values...), "app")
		curEvents[i] = schemas.Event{Values: v, Time: e.Time, Partition: e.Partition, Offset: e.Offset}
	}
	require.NoError(t, LoadAll(ctx, c, cur, curEvents))
	s2 := s1 + 3600*1000
	require.NoError(t, Recompute(ctx, c, cur, s2))
	got2, err := ReadProfiles(ctx, c, cur, s2)
	require.NoError(t, err)
	requireSameProfiles(t, cur, reference.Evaluate(cur, curEvents, s2), got2)

	var n uint64
	var hash string
	require.NoError(t, c.Conn().QueryRow(ctx, "SELECT count(), any(catalog_hash) FROM profiles_latest").Scan(&n, &hash))
	require.Equal(t, uint64(len(got2)), n, "profiles_latest shows the newest snapshot")
	require.Equal(t, cur.Hash, hash)
}

func TestEnsureSchemaRefusesTypeChange(t *testing.T) {
	cat := schemas.MustLoad(catalogPath("taobao"))
	ctx, c := setup(t, cat)
	changed := taobaoVariant(t, func(s string) string {
		s = strings.Replace(s, "last_seen:       {agg: max, of: ts}", "last_seen:       {agg: count}", 1)
		return strings.Replace(s, "item_id: int64", "item_id: string", 1)
	})
	err := EnsureSchema(ctx, c, changed)
	require.Error(t, err)
	require.Contains(t, err.Error(), "profiles.last_seen is Nullable(Int64), catalog taobao wants Int64")
	require.Contains(t, err.Error(), "events.item_id is Int64, catalog taobao wants String")
}

func TestDDLQuotesNames(t *testing.T) {
	cat := schemas.MustLoad(catalogPath("taobao"))
	for _, stmt := range DDL(cat) {
		for _, name := range []string{"user_id", "pv_24h", "events", "profiles", "_hour", "snapshot"} {
			require.NotRegexp(t, `[^`+"`"+`a-z_]`+name+`[^`+"`"+`a-z_0-9]`, stmt, "%s spliced unquoted", name)
		}
	}
}
