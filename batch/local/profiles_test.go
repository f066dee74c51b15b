package local

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

// typesCatalog has a tag of every value type (string keys, or int64 keys
// with intKey).
func typesCatalog(t *testing.T, intKey bool) *schemas.Catalog {
	t.Helper()
	src := `
name: types
events:
  key: user
  time: ts
  fields:
    user: string
    ts: timestamp
    amount: float64
    qty: int64
    promo: bool
    tag: string
bucket: 1h
tags:
  orders:     {agg: count}
  spend:      {agg: sum, of: amount}
  units:      {agg: sum, of: qty}
  last_promo: {agg: last, of: promo}
  top_tag:    {agg: mode, of: tag}
  first_seen: {agg: min, of: ts}
  big:        {rule: 'spend != nil && spend > 100'}
`
	if intKey {
		src = strings.Replace(src, "user: string", "user: int64", 1)
	}
	cat, err := schemas.Parse([]byte(src))
	require.NoError(t, err)
	return cat
}

// TestProfilesRoundTrip turns boxed profiles into columns and back, with
// every value type, nulls, and both key types.
func TestProfilesRoundTrip(t *testing.T) {
	rows := [][]any{
		{int64(3), 120.5, int64(7), true, "red", schemas.Timestamp(1709251200000), true},
		{int64(0), nil, nil, false, nil, schemas.Timestamp(-1000), false},
		{int64(1 << 40), 0.1, int64(-2), nil, "", nil, false},
	}
	for _, tc := range []struct {
		name string
		keys []any
	}{
		{"int keys", []any{int64(-5), int64(7), int64(1 << 50)}},
		{"string keys", []any{"alice", "bob", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat := typesCatalog(t, tc.name == "int keys")
			var ps []schemas.Profile
			for i, k := range tc.keys {
				ps = append(ps, schemas.Profile{Key: k, Values: rows[i]})
			}
			cols, err := ProfilesOf(cat, ps)
			require.NoError(t, err)
			require.NoError(t, cols.Check(cat))
			require.Equal(t, len(ps), cols.Len())
			require.Equal(t, ps, cols.Boxed())
			for i := range ps {
				require.Equal(t, ps[i].Key, cols.Key(i))
			}
			// A slice shares the columns and sees the same rows.
			require.Equal(t, ps[1:], cols.Slice(1, 3).Boxed())
			require.NoError(t, cols.Slice(1, 3).Check(cat))
			// Every column has a validity slice: null anywhere.
			require.True(t, cols.Tags[0].Has(1))
			require.False(t, cols.Tags[1].Has(1))
			require.NotNil(t, cols.Tags[0].Valid)
		})
	}
}

func TestProfilesOfErrors(t *testing.T) {
	cat := typesCatalog(t, false)
	good := func() []any {
		return []any{int64(3), 120.5, int64(7), true, "red", schemas.Timestamp(1), true}
	}
	for _, tc := range []struct {
		name  string
		spoil func(p *schemas.Profile)
		want  string
	}{
		{"key type", func(p *schemas.Profile) { p.Key = int64(5) }, "profile 1: key 5 is int64, want string"},
		{"null key", func(p *schemas.Profile) { p.Key = nil }, "profile 1: key <nil> is <nil>, want string"},
		{"short", func(p *schemas.Profile) { p.Values = p.Values[:3] }, "profile b has 3 values, catalog has 7 tags"},
		{"value type", func(p *schemas.Profile) { p.Values[1] = "lots" }, "profile b: tag spend: value lots is string, want float64"},
		{"int for timestamp", func(p *schemas.Profile) { p.Values[5] = int64(1) }, "profile b: tag first_seen: value 1 is int64, want timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := []schemas.Profile{{Key: "a", Values: good()}, {Key: "b", Values: good()}}
			tc.spoil(&ps[1])
			_, err := ProfilesOf(cat, ps)
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestProfilesCheck(t *testing.T) {
	cat := typesCatalog(t, true)
	for _, tc := range []struct {
		name  string
		spoil func(p *Profiles)
		want  string
	}{
		{"key type", func(p *Profiles) { p.IntKeys, p.StrKeys = nil, []string{"a", "b"} }, "profiles have keys of the wrong type, want int64"},
		{"tags", func(p *Profiles) { p.Tags = p.Tags[:6] }, "profiles have 6 tag columns, catalog types has 7 tags"},
		{"column type", func(p *Profiles) { p.Tags[2].Type = schemas.TypeFloat64 }, "tag units column is float64, want int64"},
		{"short values", func(p *Profiles) { p.Tags[1].Float = p.Tags[1].Float[:1] }, "tag spend column has 1 values for 2 profiles"},
		{"short validity", func(p *Profiles) { p.Tags[3].Valid = p.Tags[3].Valid[:1] }, "tag last_promo column has 1 validity flags for 2 profiles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewProfiles(cat, 2, false)
			require.NoError(t, p.Check(cat))
			require.Nil(t, p.Tags[0].Valid, "a count is never null")
			require.NotNil(t, p.Tags[1].Valid, "a sum can be null")
			tc.spoil(p)
			require.EqualError(t, p.Check(cat), tc.want)
		})
	}
}
