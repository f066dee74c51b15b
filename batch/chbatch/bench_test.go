package chbatch

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
)

// benchClient opens the test server on a fresh database for a benchmark
// (chtest.Open takes a *testing.T); it skips without a server.
func benchClient(b *testing.B, cat *schemas.Catalog) (context.Context, *clickhouse.Client) {
	b.Helper()
	dsn := os.Getenv(chtest.EnvDSN)
	if dsn == "" {
		dsn = chtest.DefaultDSN
	}
	cfg, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Database = fmt.Sprintf("%sbench_chbatch_%d", chtest.DatabasePrefix, time.Now().UnixNano())
	ctx := context.Background()
	c, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			b.Fatal(err)
		}
		b.Skip(err)
	}
	b.Cleanup(func() {
		_ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+clickhouse.QuoteIdent(cfg.Database))
		_ = c.Close()
	})
	if err := EnsureSchema(ctx, c, cat); err != nil {
		b.Fatal(err)
	}
	return ctx, c
}

// syntheticProfiles makes n taobao profiles with a share of empty values.
func syntheticProfiles(cat *schemas.Catalog, n int) []schemas.Profile {
	ps := make([]schemas.Profile, n)
	for i := range ps {
		vals := make([]any, len(cat.Tags))
		for j := range cat.Tags {
			t := &cat.Tags[j]
			if t.Nullable && (i+j)%7 == 0 {
				continue
			}
			switch t.Type {
			case schemas.TypeInt64:
				vals[j] = int64(i*31 + j)
			case schemas.TypeFloat64:
				vals[j] = float64(i) / 3
			case schemas.TypeString:
				vals[j] = fmt.Sprintf("v%d", i%1000)
			case schemas.TypeBool:
				vals[j] = (i+j)%2 == 0
			case schemas.TypeTimestamp:
				vals[j] = schemas.Timestamp(1511568000000 + int64(i))
			}
		}
		ps[i] = schemas.Profile{Key: int64(i + 1), Values: vals}
	}
	return ps
}

// BenchmarkPublish publishes a snapshot of 500k taobao profiles (staging,
// columnar batch insert, REPLACE PARTITION) and reports rows/s; the
// per-row sub-benchmark is the driver's row-wise Append for comparison.
func BenchmarkPublish(b *testing.B) {
	cat := schemas.MustLoad(catalogPath("taobao"))
	ctx, c := benchClient(b, cat)
	n := 500_000
	if testing.Short() {
		n = 20_000
	}
	ps := syntheticProfiles(cat, n)
	cutoff := schemas.Timestamp(1512259200000)
	b.Run("columnar", func(b *testing.B) {
		for b.Loop() {
			if err := PublishProfiles(ctx, c, cat, cutoff, ps); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("per-row", func(b *testing.B) {
		names := []string{ColSnapshot, cat.KeyField().Name}
		for i := range cat.Tags {
			names = append(names, cat.Tags[i].Name)
		}
		names = append(names, ColCatalogHash)
		snap := cutoff.Time()
		for b.Loop() {
			stage := "profiles_rowwise"
			err := withStaging(ctx, c, ProfilesTable, stage, []int64{int64(cutoff) / 1000}, func() error {
				batch, err := c.Conn().PrepareBatch(ctx, clickhouse.InsertColumns(stage, names))
				if err != nil {
					return err
				}
				row := make([]any, len(names))
				for _, p := range ps {
					row[0], row[1] = snap, p.Key
					for j, v := range p.Values {
						switch x := v.(type) {
						case bool:
							if x {
								row[j+2] = uint8(1)
							} else {
								row[j+2] = uint8(0)
							}
						default:
							row[j+2] = x
						}
					}
					row[len(row)-1] = cat.Hash
					if err := batch.Append(row...); err != nil {
						return err
					}
				}
				return batch.Send()
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkRecomputeSQL recomputes the ecommerce catalog (every aggregate
// kind, three mode joins, id de-duplication) over 200k generated events
// and reports events/s.
func BenchmarkRecomputeSQL(b *testing.B) {
	cat := schemas.MustLoad(catalogPath("ecommerce"))
	ctx, c := benchClient(b, cat)
	o := gen.Defaults(1)
	o.Users, o.Events, o.Span = 5000, 200_000, 4*day
	if testing.Short() {
		o.Events = 10_000
	}
	events := gen.Events(cat, o)
	if err := LoadAll(ctx, c, cat, events); err != nil {
		b.Fatal(err)
	}
	cutoff := o.Start + 4*day
	b.ResetTimer()
	for b.Loop() {
		if err := Recompute(ctx, c, cat, cutoff); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(events)*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProfileColumns measures the client side of publishing alone:
// turning profiles into insert columns (no server needed).
func BenchmarkProfileColumns(b *testing.B) {
	cat := schemas.MustLoad(catalogPath("taobao"))
	ps := syntheticProfiles(cat, 100_000)
	snap := time.Unix(1512259200, 0).UTC()
	for b.Loop() {
		if _, err := profileColumns(cat, ps, 0, snap); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ps)*b.N)/b.Elapsed().Seconds(), "rows/s")
}
