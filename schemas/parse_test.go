package schemas

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output")

// Each file in testdata/bad holds a broken catalog whose first line is
// "# error: <the exact error it must produce>" (\n for line breaks).
func TestBadCatalogsAreRejectedWithExactErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("want at least 10 fixtures, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# error: ")
			if !ok {
				t.Fatalf("%s: first line must be '# error: ...'", f)
			}
			want = strings.ReplaceAll(want, `\n`, "\n")
			if !strings.Contains(want, "problems:") {
				want = "invalid catalog: " + want
			}
			_, err = Parse(data)
			if err == nil {
				t.Fatalf("accepted; want error %q", want)
			}
			if *update {
				got := strings.TrimPrefix(err.Error(), "invalid catalog: ")
				rest := strings.SplitN(string(data), "\n", 2)[1]
				line := "# error: " + strings.ReplaceAll(got, "\n", `\n`) + "\n"
				if err := os.WriteFile(f, []byte(line+rest), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err.Error() != want {
				t.Fatalf("error:\n got: %s\nwant: %s", err, want)
			}
		})
	}
}

func TestCatalogCompiles(t *testing.T) {
	c := MustLoad("catalogs/taobao.yaml")
	if c.Key != 0 || c.Time != 4 || c.ID != -1 || c.Bucket != 3600_000 {
		t.Fatalf("key/time/id/bucket = %d/%d/%d/%d", c.Key, c.Time, c.ID, c.Bucket)
	}
	pv, _ := c.Tag("pv_24h")
	if pv.Agg != AggCount || pv.Window != 24*3600_000 || pv.Where == nil || pv.Nullable {
		t.Fatalf("pv_24h compiled as %+v", pv)
	}
	fs, _ := c.Tag("first_seen")
	if !fs.Lifetime() || fs.Type != TypeTimestamp || !fs.Nullable {
		t.Fatalf("first_seen compiled as %+v", fs)
	}
	ws, _ := c.Tag("window_shopper")
	if !ws.IsRule() || ws.Type != TypeBool {
		t.Fatalf("window_shopper compiled as %+v", ws)
	}
	if c.LongestWindow() != 7*24*3600_000 || !c.HasLifetime() {
		t.Fatalf("longest window %d", c.LongestWindow())
	}
	// The hash ignores comments and layout but not definitions.
	data, _ := os.ReadFile("catalogs/taobao.yaml")
	c2, err := Parse([]byte("# another comment\n" + string(data)))
	if err != nil || c2.Hash != c.Hash {
		t.Fatalf("hash changed with a comment: %v %s %s", err, c2.Hash, c.Hash)
	}
	c3, err := Parse([]byte(strings.Replace(string(data), "window: 24h}", "window: 48h}", 1)))
	if err != nil || c3.Hash == c.Hash {
		t.Fatalf("hash did not change with a window: %v", err)
	}
}

func TestRuleOrderPutsDependenciesFirst(t *testing.T) {
	c := MustLoad("catalogs/ecommerce.yaml")
	pos := map[string]int{}
	for i, ti := range c.RuleOrder {
		pos[c.Tags[ti].Name] = i
	}
	if pos["big_spender"] >= pos["vip"] {
		t.Fatalf("vip uses big_spender but comes first: %v", pos)
	}
}
