package schemas

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a catalog, placed by YAML line, tag (or
// section) and attribute.
type Problem struct {
	Line int
	// Subject is `tag NAME`, `field NAME`, `events` or `catalog`.
	Subject string
	// Attr is the attribute at fault (`of`, `window`, `rule`, ...), or "".
	Attr string
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	b.WriteString(p.Subject)
	if p.Attr != "" {
		b.WriteString(": " + p.Attr)
	}
	b.WriteString(": " + p.Msg)
	return b.String()
}

// ValidationError lists every problem found in a catalog.
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if len(lines) == 1 {
		return "invalid catalog: " + lines[0]
	}
	return fmt.Sprintf("invalid catalog, %d problems:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

var identRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

const maxIdentLen = 64

// reservedTagNames are columns the profile tables use themselves.
var reservedTagNames = map[string]bool{"snapshot": true, "catalog_hash": true}

// ValidIdent reports whether s may name a field, tag or catalog.
func ValidIdent(s string) bool { return len(s) <= maxIdentLen && identRE.MatchString(s) }

type catalogParser struct {
	problems []Problem
}

func (p *catalogParser) add(n *yaml.Node, subject, attr, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.problems = append(p.problems, Problem{Line: line, Subject: subject, Attr: attr, Msg: fmt.Sprintf(format, args...)})
}

// Parse validates and compiles catalog YAML. Every problem found is
// reported at once in a *ValidationError.
func Parse(data []byte) (*Catalog, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid catalog YAML: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, &ValidationError{[]Problem{{Subject: "catalog", Msg: "expected a mapping with name, events, bucket and tags"}}}
	}
	p := &catalogParser{}
	c := p.catalog(doc.Content[0])
	if len(p.problems) > 0 {
		return nil, &ValidationError{p.problems}
	}
	c.Hash = c.computeHash()
	return c, nil
}

// mapping returns the key/value pairs of a mapping node in order,
// reporting duplicate and unknown keys.
func (p *catalogParser) mapping(n *yaml.Node, subject string, allowed []string) ([]*yaml.Node, []*yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.add(n, subject, "", "expected a mapping")
		return nil, nil
	}
	var keys, vals []*yaml.Node
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if line, dup := seen[k.Value]; dup {
			if subject == "tags" {
				p.add(k, "tag "+k.Value, "", "defined twice (first at line %d)", line)
			} else {
				p.add(k, subject, k.Value, "defined twice (first at line %d)", line)
			}
			continue
		}
		seen[k.Value] = k.Line
		if allowed != nil && !contains(allowed, k.Value) {
			p.add(k, subject, k.Value, "unknown attribute (want one of %s)", strings.Join(allowed, ", "))
			continue
		}
		keys = append(keys, k)
		vals = append(vals, v)
	}
	return keys, vals
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func scalar(n *yaml.Node) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

func (p *catalogParser) catalog(root *yaml.Node) *Catalog {
	c := &Catalog{Key: -1, Time: -1, ID: -1}
	keys, vals := p.mapping(root, "catalog", []string{"name", "events", "bucket", "tags", "description"})
	var events, tags *yaml.Node
	bucketSeen := false
	for i, k := range keys {
		v := vals[i]
		switch k.Value {
		case "name":
			c.Name, _ = scalar(v)
			if !ValidIdent(c.Name) {
				p.add(v, "catalog", "name", "%q is not a valid identifier ([a-z][a-z0-9_]*, at most %d characters)", c.Name, maxIdentLen)
			}
		case "events":
			events = v
		case "bucket":
			bucketSeen = true
			s, _ := scalar(v)
			d, err := ParseWindow(s)
			switch {
			case err != nil:
				p.add(v, "catalog", "bucket", "%v", err)
			case d <= 0:
				p.add(v, "catalog", "bucket", "must be positive")
			case d%int64(time.Second/time.Millisecond) != 0:
				p.add(v, "catalog", "bucket", "must be a whole number of seconds")
			default:
				c.Bucket = d
			}
		case "tags":
			tags = v
		}
	}
	if c.Name == "" && !hasKey(keys, "name") {
		p.add(root, "catalog", "name", "missing")
	}
	if !bucketSeen {
		p.add(root, "catalog", "bucket", "missing (for example bucket: 1h)")
	}
	if events == nil {
		p.add(root, "catalog", "events", "missing")
		return c
	}
	p.events(c, events)
	if tags == nil {
		p.add(root, "catalog", "tags", "missing")
		return c
	}
	p.tags(c, tags)
	return c
}

func hasKey(keys []*yaml.Node, name string) bool {
	for _, k := range keys {
		if k.Value == name {
			return true
		}
	}
	return false
}

func (p *catalogParser) events(c *Catalog, n *yaml.Node) {
	keys, vals := p.mapping(n, "events", []string{"key", "time", "id", "fields"})
	names := map[string]*yaml.Node{}
	var fields *yaml.Node
	for i, k := range keys {
		if k.Value == "fields" {
			fields = vals[i]
			continue
		}
		names[k.Value] = vals[i]
	}
	if fields == nil {
		p.add(n, "events", "fields", "missing")
		return
	}
	fkeys, fvals := p.mapping(fields, "events", nil)
	for i, k := range fkeys {
		f := Field{Name: k.Value, Index: len(c.Fields)}
		subject := "field " + k.Value
		if !ValidIdent(k.Value) {
			p.add(k, subject, "", "%q is not a valid identifier ([a-z][a-z0-9_]*, at most %d characters)", k.Value, maxIdentLen)
		}
		p.fieldType(&f, fvals[i], subject)
		c.Fields = append(c.Fields, f)
	}
	resolve := func(attr string, required bool, want func(Type) bool, wantDesc string) int {
		v, ok := names[attr]
		name, _ := scalar(v)
		if !ok || name == "" {
			if required {
				p.add(n, "events", attr, "missing")
			}
			return -1
		}
		f, found := c.Field(name)
		if !found {
			p.add(v, "events", attr, "unknown field %q", name)
			return -1
		}
		if !want(f.Type) {
			p.add(v, "events", attr, "field %q is %s, want %s", name, f.Type, wantDesc)
			return -1
		}
		return f.Index
	}
	c.Key = resolve("key", true, func(t Type) bool { return t == TypeInt64 || t == TypeString }, "int64 or string")
	c.Time = resolve("time", true, func(t Type) bool { return t == TypeTimestamp }, "timestamp")
	c.ID = resolve("id", false, func(t Type) bool { return t == TypeInt64 || t == TypeString }, "int64 or string")
}

func (p *catalogParser) fieldType(f *Field, v *yaml.Node, subject string) {
	typeNode := v
	if v.Kind == yaml.MappingNode {
		keys, vals := p.mapping(v, subject, []string{"type", "enum", "format"})
		typeNode = nil
		for i, k := range keys {
			switch k.Value {
			case "type":
				typeNode = vals[i]
			case "enum":
				if vals[i].Kind != yaml.SequenceNode || len(vals[i].Content) == 0 {
					p.add(vals[i], subject, "enum", "expected a non-empty list of strings")
					continue
				}
				for _, e := range vals[i].Content {
					f.Enum = append(f.Enum, e.Value)
				}
			case "format":
				s, _ := scalar(vals[i])
				tf, ok := timeFormatNames[s]
				if !ok {
					p.add(vals[i], subject, "format", "unknown time format %q (want auto, unix_s, unix_ms or rfc3339)", s)
				}
				f.Format = tf
			}
		}
		if typeNode == nil {
			p.add(v, subject, "type", "missing")
			return
		}
	}
	s, _ := scalar(typeNode)
	t, ok := ParseType(s)
	if !ok {
		p.add(typeNode, subject, "type", "unknown type %q (want int64, float64, string, bool or timestamp)", s)
		return
	}
	f.Type = t
	if len(f.Enum) > 0 && t != TypeString {
		p.add(v, subject, "enum", "enum is only allowed on string fields")
	}
	if f.Format != TimeAuto && t != TypeTimestamp {
		p.add(v, subject, "format", "format is only allowed on timestamp fields")
	}
}

// ParseWindow reads a duration such as 30m, 24h, 7d or 2w into
// milliseconds.
func ParseWindow(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			return v * unit.Milliseconds(), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use forms like 90m, 24h, 7d)", s)
	}
	return d.Milliseconds(), nil
}

// FormatWindow writes milliseconds in the largest whole unit: 7d, 24h,
// 90m, 30s or 1500ms.
func FormatWindow(ms int64) string {
	for _, u := range []struct {
		suffix string
		ms     int64
	}{{"d", 86_400_000}, {"h", 3_600_000}, {"m", 60_000}, {"s", 1000}} {
		if ms != 0 && ms%u.ms == 0 {
			return strconv.FormatInt(ms/u.ms, 10) + u.suffix
		}
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

// tagSource is a tag as written, before resolution.
type tagSource struct {
	name                   string
	key                    *yaml.Node
	attrs                  map[string]*yaml.Node
	agg, of, where, window string
	rule                   string
}

var tagAttrs = []string{"agg", "of", "where", "window", "rule", "description"}

func (p *catalogParser) tags(c *Catalog, n *yaml.Node) {
	keys, vals := p.mapping(n, "tags", nil)
	if len(keys) == 0 && n.Kind == yaml.MappingNode {
		p.add(n, "catalog", "tags", "no tags defined")
	}
	srcs := make([]*tagSource, 0, len(keys))
	for i, k := range keys {
		subject := "tag " + k.Value
		s := &tagSource{name: k.Value, key: k, attrs: map[string]*yaml.Node{}}
		if !ValidIdent(k.Value) {
			p.add(k, subject, "", "%q is not a valid identifier ([a-z][a-z0-9_]*, at most %d characters)", k.Value, maxIdentLen)
		} else if reservedTagNames[k.Value] {
			p.add(k, subject, "", "%q is reserved for a profile column", k.Value)
		} else if _, clash := c.Field(k.Value); clash {
			p.add(k, subject, "", "name clashes with the event field %q", k.Value)
		}
		akeys, avals := p.mapping(vals[i], subject, tagAttrs)
		for j, ak := range akeys {
			s.attrs[ak.Value] = avals[j]
			val, ok := scalar(avals[j])
			if !ok {
				p.add(avals[j], subject, ak.Value, "expected a single value")
			}
			switch ak.Value {
			case "agg":
				s.agg = val
			case "of":
				s.of = val
			case "where":
				s.where = val
			case "window":
				s.window = val
			case "rule":
				s.rule = val
			}
		}
		srcs = append(srcs, s)
	}
	// Aggregates first, so that rules can see every tag's type.
	c.Tags = make([]Tag, len(srcs))
	for i, s := range srcs {
		c.Tags[i] = Tag{Name: s.name, Index: i, Of: -1}
		if _, isRule := s.attrs["rule"]; !isRule {
			p.aggregate(c, &c.Tags[i], s)
		}
	}
	for i, s := range srcs {
		if _, isRule := s.attrs["rule"]; isRule {
			c.Tags[i].Type = TypeBool
		}
	}
	for i, s := range srcs {
		if _, isRule := s.attrs["rule"]; isRule {
			p.rule(c, &c.Tags[i], s)
		}
	}
	p.orderRules(c, srcs)
}

func (p *catalogParser) aggregate(c *Catalog, t *Tag, s *tagSource) {
	subject := "tag " + s.name
	aggNode, ok := s.attrs["agg"]
	if !ok {
		p.add(s.key, subject, "agg", "missing: a tag needs either agg or rule")
		return
	}
	agg := Agg(s.agg)
	if !contains(aggNames(), s.agg) {
		p.add(aggNode, subject, "agg", "unknown aggregate %q (want one of %s)", s.agg, strings.Join(aggNames(), ", "))
		return
	}
	t.Agg = agg
	ofNode, hasOf := s.attrs["of"]
	var of *Field
	switch {
	case agg == AggCount && hasOf:
		p.add(ofNode, subject, "of", "count takes no field")
	case agg != AggCount && !hasOf:
		p.add(aggNode, subject, "of", "missing: %s needs a field", agg)
	case hasOf:
		f, found := c.Field(s.of)
		if !found {
			p.add(ofNode, subject, "of", "unknown field %q", s.of)
		} else {
			of = f
			t.Of = f.Index
		}
	}
	if of != nil {
		p.aggType(t, of, ofNode, subject)
	} else if agg == AggCount {
		t.Type = TypeInt64
	}
	if wn, ok := s.attrs["window"]; ok {
		w, err := ParseWindow(s.window)
		switch {
		case err != nil:
			p.add(wn, subject, "window", "%v", err)
		case w <= 0:
			p.add(wn, subject, "window", "must be positive (leave it out for a lifetime tag)")
		case c.Bucket > 0 && w%c.Bucket != 0:
			p.add(wn, subject, "window", "%s is not a whole number of buckets (%s)", s.window, FormatWindow(c.Bucket))
		default:
			t.Window = w
		}
	}
	if wn, ok := s.attrs["where"]; ok {
		e, err := CompileExpr(s.where, fieldResolver(c))
		if err != nil {
			p.add(wn, subject, "where", "%v", err)
		}
		t.Where = e
	}
}

func aggNames() []string {
	out := make([]string, len(Aggs))
	for i, a := range Aggs {
		out[i] = string(a)
	}
	return out
}

func (p *catalogParser) aggType(t *Tag, of *Field, n *yaml.Node, subject string) {
	t.Nullable = true
	switch t.Agg {
	case AggSum:
		if !of.Type.Numeric() {
			p.add(n, subject, "of", "sum needs an int64 or float64 field, %q is %s", of.Name, of.Type)
		}
		t.Type = of.Type
	case AggAvg:
		if !of.Type.Numeric() {
			p.add(n, subject, "of", "avg needs an int64 or float64 field, %q is %s", of.Name, of.Type)
		}
		t.Type = TypeFloat64
	case AggMin, AggMax:
		if of.Type == TypeBool {
			p.add(n, subject, "of", "%s needs an ordered field, %q is bool", t.Agg, of.Name)
		}
		t.Type = of.Type
	case AggCountDistinct:
		t.Type, t.Nullable = TypeInt64, false
	default: // first, last, mode
		t.Type = of.Type
	}
}

func fieldResolver(c *Catalog) Resolver {
	return func(name string) (Symbol, bool) {
		f, ok := c.Field(name)
		if !ok {
			return Symbol{}, false
		}
		return Symbol{Index: f.Index, Type: f.Type}, true
	}
}

func (p *catalogParser) rule(c *Catalog, t *Tag, s *tagSource) {
	subject := "tag " + s.name
	for _, a := range []string{"agg", "of", "where", "window"} {
		if n, ok := s.attrs[a]; ok {
			p.add(n, subject, a, "a rule tag takes no %s", a)
		}
	}
	t.Type = TypeBool
	resolve := func(name string) (Symbol, bool) {
		o, ok := c.Tag(name)
		if !ok {
			return Symbol{}, false
		}
		return Symbol{Index: o.Index, Type: o.Type, Nullable: o.Nullable}, true
	}
	e, err := CompileExpr(s.rule, resolve)
	if err != nil {
		p.add(s.attrs["rule"], subject, "rule", "%v", err)
		return
	}
	t.Rule = e
}

// orderRules sorts rules so that each comes after the rules it uses, and
// reports cycles.
func (p *catalogParser) orderRules(c *Catalog, srcs []*tagSource) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, len(c.Tags))
	var visit func(i int, path []string) bool
	visit = func(i int, path []string) bool {
		t := &c.Tags[i]
		switch state[i] {
		case done:
			return true
		case visiting:
			cycle := append(path[indexOf(path, t.Name):], t.Name)
			p.add(srcs[i].attrs["rule"], "tag "+t.Name, "rule", "rules form a cycle: %s", strings.Join(cycle, " -> "))
			return false
		}
		state[i] = visiting
		ok := true
		for _, ref := range t.Rule.Refs {
			o, _ := c.Tag(ref)
			if o.IsRule() && !visit(o.Index, append(path, t.Name)) {
				ok = false
				break
			}
		}
		state[i] = done
		if ok {
			c.RuleOrder = append(c.RuleOrder, i)
		}
		return ok
	}
	rules := []int{}
	for i := range c.Tags {
		if c.Tags[i].Rule != nil {
			rules = append(rules, i)
		}
	}
	sort.Ints(rules)
	for _, i := range rules {
		if state[i] == unvisited {
			visit(i, nil)
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return 0
}
