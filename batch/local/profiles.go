package local

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/portrait-dev/portrait/schemas"
)

// Profiles are profiles sorted by key, held column by column: the engine
// fills typed slices and the snapshot writer reads them, so no value is
// boxed on the way. A caller that needs []schemas.Profile (a publisher,
// the reference diff) boxes them with Boxed.
type Profiles struct {
	// IntKeys holds the keys when the catalog's key field is int64,
	// StrKeys when it is a string (the other is nil).
	IntKeys []int64
	StrKeys []string
	// Tags holds one column per tag, in catalog order.
	Tags []Column
}

// Column is one tag's values. By Type they are in Int (int64 and
// timestamps as unix ms), Float, Str or Bool; row i is null when Valid is
// not nil and Valid[i] is false (the value slot is then unset).
type Column struct {
	Type  schemas.Type
	Valid []bool
	Int   []int64
	Float []float64
	Str   []string
	Bool  []bool
}

// NewProfiles allocates n profiles of cat with unset values; nullable
// says whether every column gets a validity slice, or only those of tags
// that can be null.
func NewProfiles(cat *schemas.Catalog, n int, nullable bool) *Profiles {
	p := &Profiles{Tags: make([]Column, len(cat.Tags))}
	if cat.KeyField().Type == schemas.TypeInt64 {
		p.IntKeys = make([]int64, n)
	} else {
		p.StrKeys = make([]string, n)
	}
	for i := range cat.Tags {
		t := &cat.Tags[i]
		c := &p.Tags[i]
		c.Type = t.Type
		if nullable || t.Nullable {
			c.Valid = make([]bool, n)
		}
		switch t.Type {
		case schemas.TypeInt64, schemas.TypeTimestamp:
			c.Int = make([]int64, n)
		case schemas.TypeFloat64:
			c.Float = make([]float64, n)
		case schemas.TypeString:
			c.Str = make([]string, n)
		case schemas.TypeBool:
			c.Bool = make([]bool, n)
		}
	}
	return p
}

// Len is the number of profiles.
func (p *Profiles) Len() int {
	if p.IntKeys != nil {
		return len(p.IntKeys)
	}
	return len(p.StrKeys)
}

// Key returns the key of profile i as its Go value.
func (p *Profiles) Key(i int) any {
	if p.IntKeys != nil {
		return p.IntKeys[i]
	}
	return p.StrKeys[i]
}

// Has reports whether row i has a value (is not null).
func (c *Column) Has(i int) bool { return c.Valid == nil || c.Valid[i] }

// box returns the value of row i as an interface that points at its slot
// (nil when null), without allocating: the slot must not change while the
// interface is in use.
func (c *Column) box(i int) any {
	if !c.Has(i) {
		return nil
	}
	switch c.Type {
	case schemas.TypeInt64:
		return boxAt(int64Type, unsafe.Pointer(&c.Int[i]))
	case schemas.TypeTimestamp:
		return boxAt(timestampType, unsafe.Pointer(&c.Int[i]))
	case schemas.TypeFloat64:
		return boxAt(float64Type, unsafe.Pointer(&c.Float[i]))
	case schemas.TypeString:
		return boxAt(stringType, unsafe.Pointer(&c.Str[i]))
	case schemas.TypeBool:
		return c.Bool[i] // the runtime boxes a bool without allocating
	}
	return nil
}

// set stores v (nil for null) in row i; false when v is not of the
// column's type or null in a column without validity.
func (c *Column) set(i int, v any) bool {
	if v == nil {
		if c.Valid == nil {
			return false
		}
		c.Valid[i] = false
		return true
	}
	ok := false
	switch c.Type {
	case schemas.TypeInt64:
		c.Int[i], ok = v.(int64)
	case schemas.TypeTimestamp:
		var ts schemas.Timestamp
		ts, ok = v.(schemas.Timestamp)
		c.Int[i] = int64(ts)
	case schemas.TypeFloat64:
		c.Float[i], ok = v.(float64)
	case schemas.TypeString:
		c.Str[i], ok = v.(string)
	case schemas.TypeBool:
		c.Bool[i], ok = v.(bool)
	}
	if ok && c.Valid != nil {
		c.Valid[i] = true
	}
	return ok
}

// Boxed returns the profiles as []schemas.Profile. The values are not
// copied: every interface points at its slot in the columns, which must
// therefore not change afterwards.
func (p *Profiles) Boxed() []schemas.Profile { return p.AppendBoxed(nil) }

// AppendBoxed appends the profiles to dst as Boxed returns them.
func (p *Profiles) AppendBoxed(dst []schemas.Profile) []schemas.Profile {
	n, nt := p.Len(), len(p.Tags)
	vals := make([]any, n*nt)
	for t := range p.Tags {
		c := &p.Tags[t]
		for i := range n {
			vals[i*nt+t] = c.box(i)
		}
	}
	at := len(dst)
	dst = slices.Grow(dst, n)[:at+n]
	for i := range n {
		dst[at+i] = schemas.Profile{Key: p.boxKey(i), Values: vals[i*nt : (i+1)*nt : (i+1)*nt]}
	}
	return dst
}

// boxKey is Key without allocating: the interface points at the key's
// slot, which must not change.
func (p *Profiles) boxKey(i int) any {
	if p.IntKeys != nil {
		return boxAt(int64Type, unsafe.Pointer(&p.IntKeys[i]))
	}
	return boxAt(stringType, unsafe.Pointer(&p.StrKeys[i]))
}

// ProfilesOf turns boxed profiles of cat (as another engine computes
// them) into columns, checking every value's type; nulls are allowed in
// every tag.
func ProfilesOf(cat *schemas.Catalog, ps []schemas.Profile) (*Profiles, error) {
	p := NewProfiles(cat, len(ps), true)
	kt := cat.KeyField().Type
	for i := range ps {
		pr := &ps[i]
		ok := false
		switch kt {
		case schemas.TypeInt64:
			p.IntKeys[i], ok = pr.Key.(int64)
		case schemas.TypeString:
			p.StrKeys[i], ok = pr.Key.(string)
		}
		if !ok {
			return nil, fmt.Errorf("profile %d: key %v is %T, want %s", i, pr.Key, pr.Key, kt)
		}
		if len(pr.Values) != len(cat.Tags) {
			return nil, fmt.Errorf("profile %v has %d values, catalog has %d tags", pr.Key, len(pr.Values), len(cat.Tags))
		}
		for t, v := range pr.Values {
			if !p.Tags[t].set(i, v) {
				return nil, fmt.Errorf("profile %v: tag %s: value %v is %T, want %s", pr.Key, cat.Tags[t].Name, v, v, cat.Tags[t].Type)
			}
		}
	}
	return p, nil
}

// Check verifies that the columns fit cat: the key type, one column of
// the tag's type per tag, every slice as long as the keys.
func (p *Profiles) Check(cat *schemas.Catalog) error {
	n := p.Len()
	switch kt := cat.KeyField().Type; {
	case kt == schemas.TypeInt64 && p.StrKeys != nil, kt == schemas.TypeString && p.IntKeys != nil:
		return fmt.Errorf("profiles have keys of the wrong type, want %s", kt)
	}
	if len(p.Tags) != len(cat.Tags) {
		return fmt.Errorf("profiles have %d tag columns, catalog %s has %d tags", len(p.Tags), cat.Name, len(cat.Tags))
	}
	for t := range p.Tags {
		c, tag := &p.Tags[t], &cat.Tags[t]
		if c.Type != tag.Type {
			return fmt.Errorf("tag %s column is %s, want %s", tag.Name, c.Type, tag.Type)
		}
		var m int
		switch c.Type {
		case schemas.TypeInt64, schemas.TypeTimestamp:
			m = len(c.Int)
		case schemas.TypeFloat64:
			m = len(c.Float)
		case schemas.TypeString:
			m = len(c.Str)
		case schemas.TypeBool:
			m = len(c.Bool)
		}
		if m != n {
			return fmt.Errorf("tag %s column has %d values for %d profiles", tag.Name, m, n)
		}
		if c.Valid != nil && len(c.Valid) != n {
			return fmt.Errorf("tag %s column has %d validity flags for %d profiles", tag.Name, len(c.Valid), n)
		}
	}
	return nil
}

// Slice returns profiles [lo, hi), sharing the columns.
func (p *Profiles) Slice(lo, hi int) *Profiles {
	out := &Profiles{Tags: make([]Column, len(p.Tags))}
	if p.IntKeys != nil {
		out.IntKeys = p.IntKeys[lo:hi]
	} else {
		out.StrKeys = p.StrKeys[lo:hi]
	}
	for t, c := range p.Tags {
		s := Column{Type: c.Type}
		if c.Valid != nil {
			s.Valid = c.Valid[lo:hi]
		}
		switch c.Type {
		case schemas.TypeInt64, schemas.TypeTimestamp:
			s.Int = c.Int[lo:hi]
		case schemas.TypeFloat64:
			s.Float = c.Float[lo:hi]
		case schemas.TypeString:
			s.Str = c.Str[lo:hi]
		case schemas.TypeBool:
			s.Bool = c.Bool[lo:hi]
		}
		out.Tags[t] = s
	}
	return out
}

// evalRules sets the rule tags of rows [lo, hi), in rule order: each
// rule sees the values of the tags it refers to, boxed without
// allocating.
func (p *Profiles) evalRules(cat *schemas.Catalog, lo, hi int) {
	if len(cat.RuleOrder) == 0 {
		return
	}
	refs := make([][]int, len(cat.RuleOrder))
	for k, t := range cat.RuleOrder {
		for _, name := range cat.Tags[t].Rule.Refs {
			if r, ok := cat.Tag(name); ok {
				refs[k] = append(refs[k], r.Index)
			}
		}
	}
	row := make([]any, len(cat.Tags))
	for i := lo; i < hi; i++ {
		for k, t := range cat.RuleOrder {
			for _, r := range refs[k] {
				row[r] = p.Tags[r].box(i)
			}
			p.Tags[t].Bool[i] = cat.Tags[t].Rule.Eval(row)
		}
	}
}
