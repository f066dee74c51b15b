package source

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portrait-dev/portrait/schemas"
)

func TestReadEvents(t *testing.T) {
	c := schemas.MustLoad("../../schemas/catalogs/taobao.yaml")
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		limit, want   int
		err           string
	}{
		{"ok", "1,2,3,pv,1511658000\n1,2,3,buy,1511658001\n", 0, 2, ""},
		{"limit", "1,2,3,pv,1511658000\n1,2,3,buy,1511658001\n", 1, 1, ""},
		{"bad row", "1,2,3,pv,1511658000\n1,2,3,nope,1511658001\n", 0, 0, "bad.csv:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, map[bool]string{true: "bad.csv", false: tc.name + ".csv"}[tc.err != ""])
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadEvents(c, path, 3, tc.limit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d events, %v; want %d", len(got), err, tc.want)
			}
			if got[0].Partition != 3 || got[0].Offset != 1 || got[0].Time != 1511658000000 {
				t.Fatalf("first event placed at %d/%d time %d", got[0].Partition, got[0].Offset, got[0].Time)
			}
		})
	}
}
