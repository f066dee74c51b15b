package incremental

import (
	"testing"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
)

// BenchmarkApply measures Executor.Apply alone (events/s), with users
// looked up in a map as the speed layer does.
func BenchmarkApply(b *testing.B) {
	for _, name := range []string{"taobao", "ecommerce"} {
		b.Run(name, func(b *testing.B) {
			c := schemas.MustLoad("../../schemas/catalogs/" + name + ".yaml")
			o := gen.Defaults(1)
			o.Users, o.Events, o.Disorder, o.DupRate = 10000, 200000, 0, 0
			events := gen.Events(c, o)
			x, err := New(c, DefaultGrace)
			if err != nil {
				b.Fatal(err)
			}
			users := map[any]*User{}
			var wm schemas.Timestamp
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e := &events[i%len(events)]
				if i%len(events) == 0 && i > 0 {
					// Start over with fresh users so that ids never repeat.
					users = map[any]*User{}
					wm = 0
				}
				wm = max(wm, e.Time)
				k := e.Values[c.Key]
				u := users[k]
				if u == nil {
					u = x.NewUser(k)
					users[k] = u
				}
				x.Apply(u, e, x.KeepFrom(wm))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
