package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/portrait-dev/portrait/batch"
	"github.com/portrait-dev/portrait/internal/clickhouse"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
)

// SpeedView is the speed layer's side of a reconcile (*stream.Speed).
type SpeedView interface {
	// ProfilesAsOf returns every held user's profile as of the bucket
	// boundary asOf, sorted by key.
	ProfilesAsOf(asOf schemas.Timestamp) ([]schemas.Profile, error)
	// CatalogHash identifies the catalog the speed values follow.
	CatalogHash() string
	// Watermark is the newest event time applied.
	Watermark() schemas.Timestamp
}

// CauseSource is what the speed layer remembers about the events it did
// not fold in as a batch recompute would (*stream.Speed).
type CauseSource interface {
	// DriftMarks calls fn for every user that received events the speed
	// layer set aside, by cause (Cause* constants), with how many, for
	// the events that matter as of asOf (event time before it, or unknown).
	DriftMarks(asOf schemas.Timestamp, fn func(cause string, key any, events int64))
}

// Causes of drift the reconciler attributes.
const (
	// CauseLate: events older than the speed layer's kept buckets, which
	// it counted as late and left to the batch layer.
	CauseLate = "late"
	// CauseDLQ: records the speed layer dead-lettered (their key is known)
	// which reached the warehouse by another way.
	CauseDLQ = "dlq"
	// CauseDuplicate: events whose id the speed layer had already applied;
	// batch keeps the first copy by (time, partition, offset), the speed
	// layer the first to arrive, and their look-backs differ.
	CauseDuplicate = "duplicate"
	// CauseCatalog: the snapshot was computed with another catalog than
	// the one the speed layer follows.
	CauseCatalog = "catalog_change"
	// CauseUnexplained: drifting users none of the above accounts for.
	CauseUnexplained = "unexplained"
)

// ErrNotComparable is wrapped by the errors of a reconcile whose two
// views cannot be compared (the speed layer no longer keeps the buckets
// the snapshot's cutoff needs) or repaired (a catalog change).
var ErrNotComparable = errors.New("views not comparable")

// DefaultSampleSize is how many differing user ids a report lists per tag
// and per cause.
const DefaultSampleSize = 10

// ReconcileConfig configures one reconcile.
type ReconcileConfig struct {
	// Catalog is the catalog of the speed layer (required).
	Catalog *schemas.Catalog
	// Root is the warehouse folder holding the snapshot (required).
	Root string
	// Snapshot is the snapshot's cutoff; 0 takes the newest.
	Snapshot schemas.Timestamp
	// Speed is the speed view (required).
	Speed SpeedView
	// Causes, when set, attributes drift to late, dead-lettered and
	// duplicate events.
	Causes CauseSource
	// Repair rebuilds the drifting users' speed state from the warehouse
	// (Repairer required), then reconciles again: the report then
	// describes the state after the repair, with Before the one before.
	Repair   bool
	Repairer Repairer
	// ClickHouse, when set, gets one tag_drift row per tag.
	ClickHouse *clickhouse.Client
	// Metrics, when set, gets the drift gauges.
	Metrics *DriftMetrics
	// WriteJSON writes the report to <snapshot>/_reconcile.json.
	WriteJSON bool
	// SampleSize bounds the sample ids (default 10).
	SampleSize int
	Logger     *slog.Logger
	Now        func() time.Time
}

func (c *ReconcileConfig) validate() error {
	switch {
	case c.Catalog == nil:
		return errors.New("reconcile: catalog is required")
	case c.Root == "":
		return errors.New("reconcile: warehouse root is required")
	case c.Speed == nil:
		return errors.New("reconcile: speed view is required")
	case c.Repair && c.Repairer == nil:
		return errors.New("reconcile: repair needs a speed layer that can rebuild users")
	case c.Snapshot != 0 && !c.Catalog.IsBoundary(c.Snapshot):
		return fmt.Errorf("reconcile: snapshot %s is not a bucket boundary", c.Snapshot)
	}
	if c.SampleSize <= 0 {
		c.SampleSize = DefaultSampleSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Report is the result of one reconcile.
type Report struct {
	Snapshot     schemas.Timestamp `json:"-"`
	SnapshotText string            `json:"snapshot"`
	Catalog      string            `json:"catalog"`
	// BatchCatalogHash and SpeedCatalogHash are the catalogs the two
	// views were computed with.
	BatchCatalogHash string `json:"batch_catalog_hash"`
	SpeedCatalogHash string `json:"speed_catalog_hash"`
	SpeedWatermark   string `json:"speed_watermark"`
	// SpeedSnapshot is the snapshot the speed layer's lifetime tags rest
	// on, if any. When it is this snapshot, its lifetime tags as of the
	// cutoff equal the batch's by construction: reconcile a snapshot
	// before the speed layer rebases on it.
	SpeedSnapshot string `json:"speed_snapshot,omitempty"`
	// BatchUsers and SpeedUsers are the users of each view; Users those
	// of either; Drifting those with any difference (or in one view only).
	BatchUsers int `json:"batch_users"`
	SpeedUsers int `json:"speed_users"`
	Users      int `json:"users"`
	Drifting   int `json:"drifting_users"`
	// DriftingSample are the smallest drifting keys.
	DriftingSample []string     `json:"drifting_sample"`
	Tags           []TagDrift   `json:"tags"`
	Causes         []CauseCount `json:"causes"`
	// Repaired is set after a repair: how many users were rebuilt, and
	// Before holds the report that led to it.
	Repaired   *RepairStats `json:"repaired,omitempty"`
	Before     *Report      `json:"before_repair,omitempty"`
	ComputedAt time.Time    `json:"computed_at"`

	drifting []any // every drifting key, ascending
}

// TagDrift is the drift of one tag.
type TagDrift struct {
	Tag string `json:"tag"`
	// Compared users are in both views; of them Equal and Different.
	Compared  int64 `json:"compared"`
	Equal     int64 `json:"equal"`
	Different int64 `json:"different"`
	OnlyBatch int64 `json:"only_in_batch"`
	OnlySpeed int64 `json:"only_in_speed"`
	// Numeric tags (int64, float64) report the largest and the mean
	// absolute difference over the compared users whose values are both
	// set; other tags count differences only.
	Numeric      bool     `json:"numeric"`
	MaxAbsError  float64  `json:"max_abs_error"`
	MeanAbsError float64  `json:"mean_abs_error"`
	Sample       []string `json:"sample"`
	// MissingInBatch: the snapshot has no column for the tag (its values
	// are read as empty).
	MissingInBatch bool `json:"missing_in_batch,omitempty"`

	errSum float64
	errN   int64
}

// Drifts reports whether the tag differs anywhere.
func (t *TagDrift) Drifts() bool { return t.Different+t.OnlyBatch+t.OnlySpeed > 0 }

// CauseCount is one cause of drift: the users the speed layer marked with
// it, how many events, and how many of the drifting users it explains.
type CauseCount struct {
	Cause string `json:"cause"`
	// Events set aside and the Users they belong to (0 for catalog_change
	// and unexplained).
	Events int64 `json:"events"`
	Users  int64 `json:"users"`
	// Drifting is how many drifting users carry the cause; Sample their
	// smallest keys.
	Drifting int64    `json:"drifting_users"`
	Sample   []string `json:"sample"`
	Detail   string   `json:"detail,omitempty"`
}

// Reconcile compares the batch snapshot with the speed layer's values as
// of the snapshot's cutoff, attributes the drift to its causes, and
// optionally repairs the drifting users, writes the JSON beside the
// snapshot, inserts tag_drift rows and sets the drift gauges.
func Reconcile(ctx context.Context, cfg ReconcileConfig) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Snapshot == 0 {
		c, err := batch.LatestSnapshot(cfg.Root)
		if err != nil {
			return nil, fmt.Errorf("reconcile: finding the newest snapshot in %s: %w", cfg.Root, err)
		}
		cfg.Snapshot = c
	}
	rep, err := compare(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Repair && rep.Drifting > 0 {
		if rep.BatchCatalogHash != rep.SpeedCatalogHash {
			return rep, fmt.Errorf("reconcile: %w: snapshot %s was computed with catalog %s, the speed layer follows %s: "+
				"rebuilding users cannot close that gap; recompute the snapshot with the current catalog",
				ErrNotComparable, rep.SnapshotText, rep.BatchCatalogHash, rep.SpeedCatalogHash)
		}
		st, err := repair(ctx, &cfg, rep.drifting)
		if err != nil {
			return rep, err
		}
		after, err := compare(ctx, &cfg)
		if err != nil {
			return rep, fmt.Errorf("reconcile after repair: %w", err)
		}
		after.Repaired, after.Before = &st, rep
		rep = after
	}
	if err := publish(ctx, &cfg, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// compare builds the report of the current state.
func compare(ctx context.Context, cfg *ReconcileConfig) (*Report, error) {
	cat := cfg.Catalog
	tbl, err := batch.ReadSnapshotTable(cfg.Root, cfg.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("reconcile: reading snapshot %s: %w", cfg.Snapshot, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	speed, err := cfg.Speed.ProfilesAsOf(cfg.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w: speed values as of %s: %w", ErrNotComparable, cfg.Snapshot, err)
	}
	batchProfiles, missing := alignSnapshot(cat, tbl)
	rep := &Report{
		Snapshot: cfg.Snapshot, SnapshotText: cfg.Snapshot.String(), Catalog: cat.Name,
		BatchCatalogHash: tbl.Info.CatalogHash, SpeedCatalogHash: cfg.Speed.CatalogHash(),
		SpeedWatermark: cfg.Speed.Watermark().String(),
		BatchUsers:     len(batchProfiles), SpeedUsers: len(speed),
		ComputedAt:     cfg.Now().UTC().Truncate(time.Second),
		DriftingSample: []string{}, Causes: []CauseCount{},
	}
	if sn, ok := cfg.Speed.(interface {
		Snapshot() (schemas.Timestamp, bool)
	}); ok {
		if c, ok := sn.Snapshot(); ok {
			rep.SpeedSnapshot = c.String()
		}
	}
	rep.Tags = make([]TagDrift, len(cat.Tags))
	for k := range cat.Tags {
		t := &cat.Tags[k]
		rep.Tags[k] = TagDrift{Tag: t.Name, Sample: []string{}, MissingInBatch: missing[k],
			Numeric: t.Type == schemas.TypeInt64 || t.Type == schemas.TypeFloat64}
	}
	mergeJoin(rep, cfg.SampleSize, batchProfiles, speed)
	for k := range rep.Tags {
		if t := &rep.Tags[k]; t.errN > 0 {
			t.MeanAbsError = t.errSum / float64(t.errN)
		}
	}
	if r, ok := cfg.Causes.(causeRefresher); ok {
		if err := r.RefreshDriftMarks(ctx); err != nil {
			// The other causes still count: say so and go on.
			cfg.Logger.Warn("reading the dead letters for drift causes", "err", err)
		}
	}
	attribute(cfg, rep)
	return rep, nil
}

// causeRefresher is a CauseSource that reads what it needs (the speed
// layer's dead-letter topic) before DriftMarks.
type causeRefresher interface {
	RefreshDriftMarks(ctx context.Context) error
}

// alignSnapshot puts the snapshot's columns in the catalog's tag order,
// by name, and sorts the profiles by key; missing[k] marks the catalog
// tags the snapshot has no column for.
func alignSnapshot(cat *schemas.Catalog, tbl *batch.Table) ([]schemas.Profile, []bool) {
	col := map[string]int{}
	for j, name := range tbl.Tags {
		col[name] = j
	}
	pos := make([]int, len(cat.Tags))
	missing := make([]bool, len(cat.Tags))
	same := len(tbl.Tags) == len(cat.Tags)
	for k := range cat.Tags {
		j, ok := col[cat.Tags[k].Name]
		if !ok {
			j, missing[k] = -1, true
		}
		pos[k] = j
		same = same && j == k
	}
	out := tbl.Profiles
	if !same {
		out = make([]schemas.Profile, len(tbl.Profiles))
		for i, p := range tbl.Profiles {
			vals := make([]any, len(cat.Tags))
			for k, j := range pos {
				if j >= 0 {
					vals[k] = p.Values[j]
				}
			}
			out[i] = schemas.Profile{Key: p.Key, Values: vals}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return schemas.Compare(out[i].Key, out[j].Key) < 0 })
	return out, missing
}

// mergeJoin walks both sorted profile sets once.
func mergeJoin(rep *Report, sample int, b, s []schemas.Profile) {
	addSample := func(dst *[]string, key any) {
		if len(*dst) < sample {
			*dst = append(*dst, fmt.Sprint(key))
		}
	}
	drift := func(key any) {
		rep.drifting = append(rep.drifting, key)
		addSample(&rep.DriftingSample, key)
	}
	i, j := 0, 0
	for i < len(b) || j < len(s) {
		rep.Users++
		switch {
		case j == len(s) || (i < len(b) && schemas.Compare(b[i].Key, s[j].Key) < 0):
			for k := range rep.Tags {
				rep.Tags[k].OnlyBatch++
				addSample(&rep.Tags[k].Sample, b[i].Key)
			}
			drift(b[i].Key)
			i++
		case i == len(b) || schemas.Compare(b[i].Key, s[j].Key) > 0:
			for k := range rep.Tags {
				rep.Tags[k].OnlySpeed++
				addSample(&rep.Tags[k].Sample, s[j].Key)
			}
			drift(s[j].Key)
			j++
		default:
			differs := false
			for k := range rep.Tags {
				t := &rep.Tags[k]
				bv, sv := b[i].Values[k], s[j].Values[k]
				t.Compared++
				if t.Numeric {
					if e, ok := absError(bv, sv); ok {
						t.errSum += e
						t.errN++
						t.MaxAbsError = math.Max(t.MaxAbsError, e)
					}
				}
				if reference.ValuesEqual(bv, sv) {
					t.Equal++
					continue
				}
				t.Different++
				addSample(&t.Sample, b[i].Key)
				differs = true
			}
			if differs {
				drift(b[i].Key)
			}
			i++
			j++
		}
	}
	rep.Drifting = len(rep.drifting)
}

// absError is |a−b| for two set numeric values.
func absError(a, b any) (float64, bool) {
	fa, ok1 := toFloat(a)
	fb, ok2 := toFloat(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	return math.Abs(fa - fb), true
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// attribute fills rep.Causes: every cause the speed layer marked users
// with, the catalog change, and the drifting users left unexplained.
func attribute(cfg *ReconcileConfig, rep *Report) {
	type mark struct {
		events int64
		users  int64
		byKey  map[any]bool
	}
	marks := map[string]*mark{}
	order := []string{CauseLate, CauseDLQ, CauseDuplicate}
	for _, c := range order {
		marks[c] = &mark{byKey: map[any]bool{}}
	}
	if cfg.Causes != nil {
		cfg.Causes.DriftMarks(rep.Snapshot, func(cause string, key any, events int64) {
			m := marks[cause]
			if m == nil {
				m = &mark{byKey: map[any]bool{}}
				marks[cause] = m
				order = append(order, cause)
			}
			m.events += events
			if !m.byKey[key] {
				m.byKey[key] = true
				m.users++
			}
		})
	}
	explained := make([]bool, len(rep.drifting))
	for _, c := range order {
		m := marks[c]
		cc := CauseCount{Cause: c, Events: m.events, Users: m.users, Sample: []string{}}
		for i, k := range rep.drifting {
			if m.byKey[k] {
				explained[i] = true
				cc.Drifting++
				if len(cc.Sample) < cfg.SampleSize {
					cc.Sample = append(cc.Sample, fmt.Sprint(k))
				}
			}
		}
		if cc.Events > 0 || cc.Drifting > 0 {
			rep.Causes = append(rep.Causes, cc)
		}
	}
	if rep.BatchCatalogHash != rep.SpeedCatalogHash {
		cc := CauseCount{Cause: CauseCatalog, Drifting: int64(rep.Drifting), Sample: rep.DriftingSample,
			Detail: fmt.Sprintf("snapshot computed with catalog %s, speed layer follows %s", rep.BatchCatalogHash, rep.SpeedCatalogHash)}
		for i := range explained {
			explained[i] = true
		}
		rep.Causes = append(rep.Causes, cc)
	}
	un := CauseCount{Cause: CauseUnexplained, Sample: []string{}}
	for i, k := range rep.drifting {
		if !explained[i] {
			un.Drifting++
			if len(un.Sample) < cfg.SampleSize {
				un.Sample = append(un.Sample, fmt.Sprint(k))
			}
		}
	}
	if un.Drifting > 0 {
		rep.Causes = append(rep.Causes, un)
	}
}

// Cause returns the count of cause in the report (zero when absent).
func (r *Report) Cause(name string) CauseCount {
	for _, c := range r.Causes {
		if c.Cause == name {
			return c
		}
	}
	return CauseCount{Cause: name}
}

// Different is the number of differing values over every tag, counting
// users in one view only once per tag.
func (r *Report) Different() int64 {
	var n int64
	for _, t := range r.Tags {
		n += t.Different + t.OnlyBatch + t.OnlySpeed
	}
	return n
}
