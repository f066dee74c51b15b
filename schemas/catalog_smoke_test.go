package schemas

import "testing"

func TestShippedCatalogsCompile(t *testing.T) {
	for _, name := range []string{"taobao", "ecommerce"} {
		c, err := Load("catalogs/" + name + ".yaml")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(c.Tags) == 0 || c.Hash == "" {
			t.Fatalf("%s: empty catalog", name)
		}
	}
}
