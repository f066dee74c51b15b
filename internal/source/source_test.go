package source

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

const taobao = "../../schemas/catalogs/taobao.yaml"

type readResult struct {
	rows []Row
	errs []string
}

func readAll(t *testing.T, c *schemas.Catalog, name, format, text string) (readResult, error) {
	t.Helper()
	f, err := ParseFormat(format)
	require.NoError(t, err)
	r := NewReader(c, strings.NewReader(text), name, f)
	var res readResult
	for {
		row, err := r.Next()
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		if row.Err != nil {
			var re *RowError
			require.True(t, errors.As(row.Err, &re))
			res.errs = append(res.errs, row.Err.Error())
			continue
		}
		row.Raw = append([]byte(nil), row.Raw...)
		res.rows = append(res.rows, row)
	}
}

func TestReader(t *testing.T) {
	c := schemas.MustLoad(taobao)
	row1 := []any{int64(1), int64(10), int64(100), "pv", schemas.Timestamp(1511658000000)}
	tests := []struct {
		name, format, text string
		wantValues         [][]any
		wantLines          []int
		wantKeys           []string
		wantErrs           []string
		wantFatal          string
	}{
		{
			name: "csv no header", format: "csv",
			text:       "1,10,100,pv,1511658000\n\n2,11,101,buy,1511658001000\n",
			wantValues: [][]any{row1, {int64(2), int64(11), int64(101), "buy", schemas.Timestamp(1511658001000)}},
			wantLines:  []int{1, 3}, wantKeys: []string{"1", "2"},
		},
		{
			name: "csv header by name", format: "csv",
			text:       "ts, behavior ,user_id,category_id,item_id\r\n1511658000,pv,1,100,10\r\n",
			wantValues: [][]any{row1}, wantLines: []int{2}, wantKeys: []string{"1"},
		},
		{
			name: "csv header after blank lines", format: "csv",
			text:       "\n  \nuser_id,item_id,category_id,behavior,ts\n1,10,100,pv,1511658000\n",
			wantValues: [][]any{row1}, wantLines: []int{4}, wantKeys: []string{"1"},
		},
		{
			// A column that is not a field makes the first line data: the
			// rule is "every cell is a field name", not "names every field".
			name: "csv extra column is no header", format: "csv",
			text: "user_id,item_id,category_id,behavior,ts,note\n1,10,100,pv,1511658000,hello\n",
			wantErrs: []string{
				`f.csv:1: has 6 columns, want 5 (not a header: column 6 "note" is not a field)`,
				`f.csv:2: has 6 columns, want 5`,
			},
		},
		{
			name: "csv misspelt header", format: "csv",
			text: "user_id,item_id,category_id,behavior,time\n1,10,100,pv,1511658000\n",
			wantErrs: []string{
				`f.csv:1: field user_id: "user_id" is not an int64 (not a header: column 5 "time" is not a field)`,
			},
			wantValues: [][]any{row1}, wantLines: []int{2}, wantKeys: []string{"1"},
		},
		{
			name: "csv bad rows", format: "csv",
			text:       "1,10,100,pv,1511658000\nx,10,100,pv,1511658000\n3,10,100,view,1511658000\n4,10\n5,\"a\"b,1,pv,1\n6,10,100,pv,yesterday\n7,\"10,100,pv,1\n1,10,100,pv,1511658000\n",
			wantValues: [][]any{row1, row1}, wantLines: []int{1, 8}, wantKeys: []string{"1", "1"},
			wantErrs: []string{
				`f.csv:2: field user_id: "x" is not an int64`,
				`f.csv:3: field behavior: "view" is not one of pv, buy, cart, fav`,
				`f.csv:4: has 2 columns, want 5`,
				`f.csv:5: bad CSV: extraneous or missing " in quoted-field`,
				`f.csv:6: field ts: timestamp "yesterday" is neither a unix time nor RFC 3339`,
				`f.csv:7: bad CSV: extraneous or missing " in quoted-field`,
			},
		},
		{
			name: "csv truncated last line", format: "csv",
			text:       "1,10,100,pv,1511658000\n2,11,101,buy,15",
			wantValues: [][]any{row1}, wantLines: []int{1}, wantKeys: []string{"1"},
			wantErrs: []string{`f.csv:2: truncated record (no trailing newline)`},
		},
		{
			name: "csv blank last line without newline", format: "csv",
			text:       "1,10,100,pv,1511658000\n  ",
			wantValues: [][]any{row1}, wantLines: []int{1}, wantKeys: []string{"1"},
		},
		{
			name: "csv header missing fields", format: "csv",
			text:      "user_id,item_id,ts\n1,2,3\n",
			wantFatal: "f.csv:1: header has no column for fields category_id, behavior",
		},
		{
			name: "csv header missing a field", format: "csv",
			text:      "user_id,item_id,category_id,behavior\n1,2,3,pv\n",
			wantFatal: "f.csv:1: header has no column for field ts",
		},
		{
			name: "csv header names a field twice", format: "csv",
			text:      "user_id,item_id,category_id,behavior,ts,ts\n1,2,3,pv,4,4\n",
			wantFatal: "f.csv:1: header names field ts twice",
		},
		{
			name: "jsonl", format: "jsonl",
			text: `{"user_id":1,"item_id":10,"category_id":100,"behavior":"pv","ts":1511658000,"extra":[1]}` + "\n\n" +
				`{"user_id":2,"item_id":11,"category_id":101,"behavior":"buy","ts":"2017-11-26T01:00:01.5Z"}` + "\n",
			wantValues: [][]any{row1, {int64(2), int64(11), int64(101), "buy", schemas.Timestamp(1511658001500)}},
			wantLines:  []int{1, 3}, wantKeys: []string{"1", "2"},
		},
		{
			name: "jsonl bad rows", format: "jsonl",
			text: `{"user_id":"u1","item_id":10,"category_id":100,"behavior":"pv","ts":1}` + "\n" +
				`{"user_id":1,"item_id":10,"category_id":100,"behavior":"pv"}` + "\n" +
				"not json\n" +
				`{"user_id":1} {"user_id":2}` + "\n" +
				"null\n" +
				`{"user_id":1,"item_id":1.5,"category_id":100,"behavior":"pv","ts":1}` + "\n" +
				`{"user_id":1,"item_id":1,"category_id":null,"behavior":"pv","ts":1}` + "\n" +
				"[1,2]\n" +
				`{"user_id":3,"item_id":10` + "\n" +
				`{"user_id":4,"item_id":10,"category_id":100,"behavior":"pv","ts":1511658000}`,
			wantErrs: []string{
				`f.jsonl:1: field user_id: got string "u1", want int64`,
				`f.jsonl:2: missing field ts`,
				`f.jsonl:3: bad JSON: invalid character 'o' in literal null (expecting 'u')`,
				`f.jsonl:4: bad JSON: data after the object`,
				`f.jsonl:5: bad JSON: want an object, got null`,
				`f.jsonl:6: field item_id: "1.5" is not an int64`,
				`f.jsonl:7: field category_id: null value`,
				`f.jsonl:8: bad JSON: want an object, got an array`,
				`f.jsonl:9: bad JSON: unexpected EOF`,
				`f.jsonl:10: truncated record (no trailing newline)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := readAll(t, c, "f."+tt.format, tt.format, tt.text)
			if tt.wantFatal != "" {
				require.EqualError(t, err, tt.wantFatal)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantErrs, res.errs)
			var values [][]any
			var lines []int
			var keys []string
			for _, r := range res.rows {
				values, lines, keys = append(values, r.Values), append(lines, r.Line), append(keys, r.Key)
			}
			require.Equal(t, tt.wantValues, values)
			require.Equal(t, tt.wantLines, lines)
			require.Equal(t, tt.wantKeys, keys)
		})
	}
}

func TestRowKeyAndRawOnError(t *testing.T) {
	c := schemas.MustLoad(taobao)
	r := NewReader(c, strings.NewReader("42,x,1,pv,1\n"), "f.csv", CSV)
	row, err := r.Next()
	require.NoError(t, err)
	require.Error(t, row.Err)
	require.Equal(t, "42", row.Key)
	require.Equal(t, "42,x,1,pv,1", string(row.Raw))

	// Raw is the line as written, quotes and all; the key is found through
	// a header too, and on a truncated row.
	r = NewReader(c, strings.NewReader("ts,user_id,item_id,category_id,behavior\n1,\"42\",\"x\",1,pv\n1,43,1,1,pv"), "f.csv", CSV)
	row, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, "42", row.Key)
	require.Equal(t, `1,"42","x",1,pv`, string(row.Raw))
	row, err = r.Next()
	require.NoError(t, err)
	require.ErrorIs(t, row.Err, ErrTruncated)
	require.Nil(t, row.Values)
	require.Equal(t, "43", row.Key)
	require.Equal(t, 3, row.Line)
	_, err = r.Next()
	require.Equal(t, io.EOF, err)
}

func TestLongLine(t *testing.T) {
	c := schemas.MustLoad(taobao)
	long := strings.Repeat("9", maxLine+10)
	r := NewReader(c, strings.NewReader("1,10,100,pv,1511658000\n"+long+"\n1,10,100,pv,1511658000\n"), "f.csv", CSV)
	var lines []int
	var errs []string
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		lines = append(lines, row.Line)
		if row.Err != nil {
			errs = append(errs, row.Err.Error())
			require.Len(t, row.Raw, rawLimit)
		}
	}
	require.Equal(t, []int{1, 2, 3}, lines)
	require.Equal(t, []string{"f.csv:2: line longer than 16 MiB"}, errs)
}

func TestBytesRead(t *testing.T) {
	c := schemas.MustLoad(taobao)
	for _, path := range []string{"testdata/plain.csv", "testdata/plain.csv.gz"} {
		t.Run(path, func(t *testing.T) {
			st, err := os.Stat(path)
			require.NoError(t, err)
			r, err := Open(c, path, "")
			require.NoError(t, err)
			defer r.Close()
			for {
				if _, err := r.Next(); err == io.EOF {
					break
				}
			}
			require.Equal(t, st.Size(), r.BytesRead())
		})
	}
}

func TestOpenFiles(t *testing.T) {
	c := schemas.MustLoad(taobao)
	for _, path := range []string{"testdata/header.csv", "testdata/plain.csv", "testdata/plain.csv.gz", "testdata/rows.jsonl"} {
		t.Run(path, func(t *testing.T) {
			r, err := Open(c, path, "")
			require.NoError(t, err)
			n, bad := 0, 0
			for {
				row, err := r.Next()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				if row.Err != nil {
					bad++
					continue
				}
				n++
				ev := row.Event(c, 3)
				require.Equal(t, int32(3), ev.Partition)
				require.Equal(t, int64(row.Line), ev.Offset)
				require.Equal(t, row.Values[c.Time], ev.Time)
			}
			require.NoError(t, r.Close())
			require.Equal(t, 2, n+bad)
		})
	}
	_, err := Open(c, "testdata/nope.txt", "")
	require.ErrorContains(t, err, "cannot tell the format")
	_, err = Open(c, "testdata/missing.csv", "")
	require.ErrorContains(t, err, "opening input")
}

// TestAppendJSONRoundTrip checks every value comes back exactly through
// schemas.ConvertJSON, as the speed layer decodes it.
func TestAppendJSONRoundTrip(t *testing.T) {
	c, err := schemas.Parse([]byte(`
name: rt
events:
  key: k
  time: t_auto
  fields:
    k: string
    t_auto: timestamp
    t_ms: {type: timestamp, format: unix_ms}
    t_s: {type: timestamp, format: unix_s}
    t_rfc: {type: timestamp, format: rfc3339}
    f: float64
    n: int64
    b: bool
bucket: 1h
tags:
  c: {agg: count}
`))
	require.NoError(t, err)
	tests := []struct {
		name string
		vals []any
		want string
	}{
		{"modern", []any{`a"b,c`, schemas.Timestamp(1511658000123), schemas.Timestamp(1511658000123), schemas.Timestamp(1511658000000), schemas.Timestamp(1511658000123), 0.1, int64(-7), true},
			`{"k":"a\"b,c","t_auto":1511658000123,"t_ms":1511658000123,"t_s":1511658000,"t_rfc":"2017-11-26T01:00:00.123Z","f":0.1,"n":-7,"b":true}`},
		{"early and fractional", []any{"é", schemas.Timestamp(86400000), schemas.Timestamp(-5), schemas.Timestamp(1500), schemas.Timestamp(0), 1e300, int64(0), false},
			`{"k":"é","t_auto":"1970-01-02T00:00:00.000Z","t_ms":-5,"t_s":1.500,"t_rfc":"1970-01-01T00:00:00.000Z","f":1e+300,"n":0,"b":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendJSON(nil, c, tt.vals)
			require.Equal(t, tt.want, string(b))
			for _, useNumber := range []bool{true, false} {
				var obj map[string]any
				dec := json.NewDecoder(strings.NewReader(string(b)))
				if useNumber {
					dec.UseNumber()
				}
				require.NoError(t, dec.Decode(&obj))
				for i := range c.Fields {
					v, err := schemas.ConvertJSON(&c.Fields[i], obj[c.Fields[i].Name])
					require.NoError(t, err, c.Fields[i].Name)
					require.Equal(t, tt.vals[i], v, "field %s (UseNumber %v)", c.Fields[i].Name, useNumber)
				}
			}
		})
	}
}

func TestKey(t *testing.T) {
	require.Equal(t, "-42", Key(int64(-42)))
	require.Equal(t, "u1", Key("u1"))
	require.Equal(t, "", Key(nil))
	require.Equal(t, "true", Key(true))
}
