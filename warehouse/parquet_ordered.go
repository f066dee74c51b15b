package warehouse

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
)

// OrderedSchema is a Parquet schema whose columns keep the order of fields
// (parquet.Group sorts them by name; events files fix catalog order and
// snapshots keep the key first and the tags in catalog order). Build the
// fields with OrderedField.
func OrderedSchema(name string, fields []parquet.Field) *parquet.Schema {
	return parquet.NewSchema(name, orderedGroup(fields))
}

// OrderedField is a column of an OrderedSchema: node under name.
func OrderedField(name string, node parquet.Node) parquet.Field {
	return orderedField{Node: node, name: name}
}

// orderedGroup is a Parquet group whose columns keep the order they are
// given in.
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group(nil).Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeFor[map[string]any]() }
func (g orderedGroup) String() string {
	var b strings.Builder
	b.WriteString("message {")
	for _, f := range g {
		fmt.Fprintf(&b, " %s %s;", f.Name(), f.Type())
	}
	b.WriteString(" }")
	return b.String()
}

type orderedField struct {
	parquet.Node
	name string
}

func (f orderedField) Name() string { return f.name }

// Value is only used to deconstruct Go values into rows, which the
// warehouse and snapshot writers never do.
func (f orderedField) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Map {
		return base.MapIndex(reflect.ValueOf(f.name))
	}
	return reflect.Value{}
}

// CountingWriter counts the bytes written through it to W (for the Bytes
// of a MarkerFile).
type CountingWriter struct {
	W io.Writer
	N int64 // bytes written so far
}

func (c *CountingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
