package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Catalog is a validated, compiled catalog: the event schema and the tags
// every executor computes.
type Catalog struct {
	Name   string
	Fields []Field
	// Key, Time and ID index Fields: the entity key, the event time and the
	// optional event id (ID is -1 when the catalog has none).
	Key, Time, ID int
	// Bucket is the time-bucket size in milliseconds.
	Bucket int64
	// Tags in declaration order. Rules come after the tags they use in
	// RuleOrder.
	Tags []Tag
	// RuleOrder lists the indexes of rule tags in an order where every
	// rule comes after the rules it refers to.
	RuleOrder []int
	// Hash identifies the compiled catalog; it changes when any field or
	// tag definition changes and not when comments or layout do.
	Hash string
}

// Field is one field of the event schema.
type Field struct {
	Name   string
	Type   Type
	Enum   []string
	Format TimeFormat
	Index  int
}

// Agg is an aggregate kind.
type Agg string

// The aggregate kinds. All are mergeable partials.
const (
	AggCount         Agg = "count"
	AggSum           Agg = "sum"
	AggMin           Agg = "min"
	AggMax           Agg = "max"
	AggAvg           Agg = "avg"
	AggFirst         Agg = "first"
	AggLast          Agg = "last"
	AggCountDistinct Agg = "count_distinct"
	AggMode          Agg = "mode"
)

// Aggs lists every aggregate kind.
var Aggs = []Agg{AggCount, AggSum, AggMin, AggMax, AggAvg, AggFirst, AggLast, AggCountDistinct, AggMode}

// Tag is one compiled tag: an aggregate over events or a rule over tags.
type Tag struct {
	Name  string
	Index int
	// Rule is set for rule tags; Agg, Of, Where and Window are then unset.
	Rule *Expr
	Agg  Agg
	// Of is the field index the aggregate reads, or -1 for count.
	Of int
	// Where filters the events; nil takes every event.
	Where *Expr
	// Window in milliseconds; 0 means lifetime.
	Window int64
	// Type of the tag's value and whether it can be null (empty window).
	Type     Type
	Nullable bool
}

// IsRule reports whether the tag is a rule over other tags.
func (t *Tag) IsRule() bool { return t.Rule != nil }

// Lifetime reports whether an aggregate tag takes every event before the
// as-of time.
func (t *Tag) Lifetime() bool { return t.Rule == nil && t.Window == 0 }

// Event is one decoded, validated event.
type Event struct {
	// Values by field index: int64, float64, string, bool or Timestamp.
	Values []any
	// Time repeats the event-time field.
	Time Timestamp
	// Partition and Offset place the event in its source (Kafka partition
	// and offset, or file ordinal and line for imports). They break ties
	// between events with the same time.
	Partition int32
	Offset    int64
}

// Before reports whether e orders before o by (time, partition, offset),
// the tie-break every executor uses for first and last.
func (e *Event) Before(o *Event) bool {
	if e.Time != o.Time {
		return e.Time < o.Time
	}
	if e.Partition != o.Partition {
		return e.Partition < o.Partition
	}
	return e.Offset < o.Offset
}

// Profile is one entity's tag values, in catalog tag order; nil is the
// empty (null) value.
type Profile struct {
	Key    any
	Values []any
}

// Load reads, validates and compiles a catalog file.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading catalog: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

// MustLoad is Load for tests and examples; it panics on error.
func MustLoad(path string) *Catalog {
	c, err := Load(path)
	if err != nil {
		panic(err)
	}
	return c
}

// Field returns the named field.
func (c *Catalog) Field(name string) (*Field, bool) {
	for i := range c.Fields {
		if c.Fields[i].Name == name {
			return &c.Fields[i], true
		}
	}
	return nil, false
}

// Tag returns the named tag.
func (c *Catalog) Tag(name string) (*Tag, bool) {
	for i := range c.Tags {
		if c.Tags[i].Name == name {
			return &c.Tags[i], true
		}
	}
	return nil, false
}

// KeyField is the entity-key field.
func (c *Catalog) KeyField() *Field { return &c.Fields[c.Key] }

// LongestWindow is the longest tag window in milliseconds (0 when every
// aggregate is lifetime).
func (c *Catalog) LongestWindow() int64 {
	var w int64
	for i := range c.Tags {
		if c.Tags[i].Window > w {
			w = c.Tags[i].Window
		}
	}
	return w
}

// HasLifetime reports whether any aggregate tag is lifetime.
func (c *Catalog) HasLifetime() bool {
	for i := range c.Tags {
		if c.Tags[i].Lifetime() {
			return true
		}
	}
	return false
}

// BucketStart returns the start of the bucket that holds ts.
func (c *Catalog) BucketStart(ts Timestamp) Timestamp {
	return Timestamp(floorDiv(int64(ts), c.Bucket) * c.Bucket)
}

// IsBoundary reports whether ts is a bucket boundary.
func (c *Catalog) IsBoundary(ts Timestamp) bool { return c.BucketStart(ts) == ts }

// BucketDuration is the bucket size as a time.Duration.
func (c *Catalog) BucketDuration() time.Duration { return time.Duration(c.Bucket) * time.Millisecond }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// computeHash hashes the compiled definitions (not the YAML text).
func (c *Catalog) computeHash() string {
	type fieldDef struct {
		Name, Type string
		Enum       []string
		Format     TimeFormat
	}
	type tagDef struct {
		Name, Agg, Of, Where, Rule string
		Window                     int64
	}
	def := struct {
		Name          string
		Fields        []fieldDef
		Key, Time, ID int
		Bucket        int64
		Tags          []tagDef
	}{Name: c.Name, Key: c.Key, Time: c.Time, ID: c.ID, Bucket: c.Bucket}
	for _, f := range c.Fields {
		def.Fields = append(def.Fields, fieldDef{f.Name, f.Type.String(), f.Enum, f.Format})
	}
	for _, t := range c.Tags {
		td := tagDef{Name: t.Name, Agg: string(t.Agg), Window: t.Window}
		if t.Of >= 0 && t.Rule == nil {
			td.Of = c.Fields[t.Of].Name
		}
		if t.Where != nil {
			td.Where = t.Where.Source
		}
		if t.Rule != nil {
			td.Rule = t.Rule.Source
		}
		def.Tags = append(def.Tags, td)
	}
	b, _ := json.Marshal(def)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
