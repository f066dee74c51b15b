package serving

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/portrait-dev/portrait/schemas"
)

// FuzzLookup sends arbitrary ids and batch bodies: the handler answers
// 200, 400, 404 or 413 with a JSON body, and never panics.
func FuzzLookup(f *testing.F) {
	c := schemas.MustLoad(taobao)
	h, err := NewHandler(c, taobaoSource(c), Config{MaxBodyBytes: 4096}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("1", `{"keys":[1,"2",3]}`)
	f.Add("-0", `{"keys":[1e3]}`)
	f.Add("%zz", `{"keys":null}`)
	f.Fuzz(func(t *testing.T, id, body string) {
		rec := do(h, "GET", "/v1/profiles/"+url.PathEscape(id), "")
		switch rec.Code {
		case 200, 400, 404, 405, 301, 307:
		default:
			t.Fatalf("GET %q: status %d", id, rec.Code)
		}
		rec = do(h, "POST", "/v1/profiles:batchGet", body)
		switch rec.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("batch %q: status %d", body, rec.Code)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("batch %q: invalid JSON %q", body, rec.Body.String())
		}
	})
}
