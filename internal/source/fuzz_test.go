package source

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/portrait-dev/portrait/schemas"
)

// FuzzReader feeds arbitrary input to both formats: the reader must never
// panic, lines only go forward, every row is either valid or carries a
// *RowError naming its line, a row is never taken from a final line
// without a newline, and a valid row re-encodes to JSON that reads back to
// the same values.
func FuzzReader(f *testing.F) {
	c := schemas.MustLoad(taobao)
	f.Add("1,10,100,pv,1511658000\n")
	f.Add("user_id,item_id,category_id,behavior,ts\n1,2,3,buy,2017-11-26T01:00:00Z\n")
	f.Add("ts,behavior,user_id,item_id,category_id\r\n\r\n1,pv,1,2,3\r\n4,buy,1,2,3")
	f.Add("user_id,item_id,category_id,behavior,time\n1,2,3,buy,4\n")
	f.Add(`{"user_id":1,"item_id":10,"category_id":100,"behavior":"pv","ts":1511658000}` + "\n")
	f.Add(`{"user_id":1,"item_id":10,"category_id":100,"behavior":"pv","ts":1511658000,"x":[1]} {}` + "\n[1]\nnull")
	f.Add("\"a\nb\",\"\n")
	f.Add("1,\"1\"\"0\",100,pv,1511658000\n1,\"10,100,pv,1\n")
	f.Fuzz(func(t *testing.T, in string) {
		terminated := strings.HasSuffix(in, "\n")
		lastLine := strings.Count(in, "\n") + 1
		for _, format := range []Format{CSV, JSONL} {
			r := NewReader(c, strings.NewReader(in), "fuzz", format)
			prev := 0
			for {
				row, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					var re *RowError
					if !errors.As(err, &re) || format != CSV {
						t.Fatalf("%s: Next: %v", format, err)
					}
					break // a bad header ends the file
				}
				if row.Line <= prev {
					t.Fatalf("%s: line %d after line %d", format, row.Line, prev)
				}
				prev = row.Line
				if row.Err != nil {
					var re *RowError
					if !errors.As(row.Err, &re) || re.Line != row.Line {
						t.Fatalf("%s: row error %#v on line %d", format, row.Err, row.Line)
					}
					if row.Values != nil {
						t.Fatalf("%s: values with an error", format)
					}
					continue
				}
				if !terminated && row.Line == lastLine {
					t.Fatalf("%s: row from the unterminated line %d", format, row.Line)
				}
				js := AppendJSON(nil, c, row.Values)
				back := NewReader(c, strings.NewReader(string(js)+"\n"), "back", JSONL)
				brow, err := back.Next()
				if err != nil || brow.Err != nil {
					t.Fatalf("re-reading %s: %v %v", js, err, brow.Err)
				}
				for i := range row.Values {
					if schemas.Compare(row.Values[i], brow.Values[i]) != 0 {
						t.Fatalf("field %s: %v became %v", c.Fields[i].Name, row.Values[i], brow.Values[i])
					}
				}
			}
		}
	})
}
