package source

import (
	"io"
	"strings"
	"testing"

	"github.com/portrait-dev/portrait/schemas"
)

// FuzzReader feeds arbitrary input to both formats: the reader must never
// panic, every row is either valid or carries a *RowError, and a valid
// row re-encodes to JSON that reads back to the same values.
func FuzzReader(f *testing.F) {
	c := schemas.MustLoad(taobao)
	f.Add("1,10,100,pv,1511658000\n")
	f.Add("user_id,item_id,category_id,behavior,ts\n1,2,3,buy,2017-11-26T01:00:00Z\n")
	f.Add(`{"user_id":1,"item_id":10,"category_id":100,"behavior":"pv","ts":1511658000}` + "\n")
	f.Add("\"a\nb\",\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		for _, format := range []Format{CSV, JSONL} {
			r := NewReader(c, strings.NewReader(in), "fuzz", format)
			for range 1000 {
				row, err := r.Next()
				if err != nil {
					if err == io.EOF {
						break
					}
					break // a bad header ends the file
				}
				if row.Err != nil {
					if _, ok := row.Err.(*RowError); !ok {
						t.Fatalf("row error %T, want *RowError", row.Err)
					}
					continue
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
