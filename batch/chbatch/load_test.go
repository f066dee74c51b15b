package chbatch

import (
	"context"
	"testing"

	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// SyncHours loads exactly the hours whose counts differ, and a second run
// loads nothing.
func TestSyncHoursConverges(t *testing.T) {
	ctx := context.Background()
	c := chtest.Open(t)
	cat := schemas.MustLoad("../../schemas/catalogs/taobao.yaml")
	root := t.TempDir()
	o := gen.Defaults(3)
	o.Span = 30 * 3600 * 1000 // 30 hours
	events := gen.Events(cat, o)
	if _, err := warehouse.AppendEvents(root, cat, events, 1, warehouse.PartFileName); err != nil {
		t.Fatal(err)
	}
	hours, rows, err := SyncHours(ctx, c, cat, root)
	if err != nil {
		t.Fatal(err)
	}
	if rows != int64(len(events)) || len(hours) < 30 {
		t.Fatalf("first sync loaded %d rows in %d hours, want %d rows in ≥30 hours", rows, len(hours), len(events))
	}
	counts, err := EventCounts(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, n := range counts {
		total += n
	}
	if total != int64(len(events)) {
		t.Fatalf("events table has %d rows, want %d", total, len(events))
	}
	hours, rows, err = SyncHours(ctx, c, cat, root)
	if err != nil || len(hours) != 0 || rows != 0 {
		t.Fatalf("second sync loaded %d rows in %d hours (%v), want nothing", rows, len(hours), err)
	}
	// A straggler in one hour re-loads that hour only.
	late := events[0]
	late.Offset = 1 << 40
	if _, err := warehouse.AppendEvents(root, cat, []schemas.Event{late}, 2, warehouse.PartFileName); err != nil {
		t.Fatal(err)
	}
	hours, _, err = SyncHours(ctx, c, cat, root)
	if err != nil || len(hours) != 1 || hours[0] != warehouse.HourStart(late.Time) {
		t.Fatalf("after a straggler: loaded hours %v (%v), want only %s", hours, err, warehouse.HourStart(late.Time))
	}
}
