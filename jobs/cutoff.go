package jobs

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/warehouse"
)

// RecomputeCutoff is the cutoff a scheduled recompute takes: the newest
// bucket boundary at or before the landing watermark. bucket is the
// catalog's bucket size (schemas.Catalog.BucketDuration).
func RecomputeCutoff(landingWatermark schemas.Timestamp, bucket time.Duration) schemas.Timestamp {
	b := bucket.Milliseconds()
	if b <= 0 {
		return landingWatermark
	}
	w := int64(landingWatermark)
	q := w / b
	if w%b != 0 && w < 0 {
		q-- // floor, not truncation, before 1970
	}
	return schemas.Timestamp(q * b)
}

// OpenHour is an events hour that is not closed.
type OpenHour struct {
	Start schemas.Timestamp
	Dir   string
	// Reason says why: no _SUCCESS, or files the marker does not list.
	Reason string
}

// OpenHoursError is ClosedHours' refusal: the hours that are not closed.
type OpenHoursError struct {
	From, To schemas.Timestamp
	Hours    []OpenHour
}

func (e *OpenHoursError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d events hour(s) before %s are not closed: ", len(e.Hours), e.To)
	for i, h := range e.Hours {
		if i == 10 {
			fmt.Fprintf(&b, ", … %d more", len(e.Hours)-10)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", h.Start, h.Reason)
	}
	return b.String()
}

// OpenHours lists the events hours overlapping [from, to) that hold data
// but are not closed: there is no _SUCCESS marker, or there are live data
// files the marker does not list (stragglers re-opened the hour). Hours
// without data files are not open.
func OpenHours(root string, from, to schemas.Timestamp) ([]OpenHour, error) {
	hours, err := warehouse.ListHours(root, from, to)
	if err != nil {
		return nil, fmt.Errorf("listing events hours: %w", err)
	}
	var out []OpenHour
	for _, h := range hours {
		reason, err := openReason(h.Dir)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			out = append(out, OpenHour{Start: h.Start, Dir: h.Dir, Reason: reason})
		}
	}
	return out, nil
}

// openReason says why an hour is open, or "" when it is closed or empty.
func openReason(dir string) (string, error) {
	files, err := warehouse.DataFiles(dir)
	if err != nil {
		return "", err
	}
	live := warehouse.LiveFiles(files)
	if len(live) == 0 {
		return "", nil
	}
	m, ok, err := warehouse.ReadMarker(dir)
	if err != nil {
		return "", err
	}
	if !ok {
		return "no " + warehouse.SuccessMarker, nil
	}
	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		listed[f.Name] = true
	}
	unlisted := 0
	for _, p := range live {
		if !listed[filepath.Base(p)] {
			unlisted++
		}
	}
	if unlisted > 0 {
		return fmt.Sprintf("re-opened: %d file(s) not in %s", unlisted, warehouse.SuccessMarker), nil
	}
	return "", nil
}

// ClosedHours checks that every events hour overlapping [from, to) that
// holds data is closed. It returns an *OpenHoursError naming the hours
// that are not, so a recompute refuses to publish a snapshot over them.
func ClosedHours(root string, from, to schemas.Timestamp) error {
	open, err := OpenHours(root, from, to)
	if err != nil {
		return err
	}
	if len(open) > 0 {
		return &OpenHoursError{From: from, To: to, Hours: open}
	}
	return nil
}

// ClosedWatermark is the watermark the warehouse itself vouches for,
// for runs without a live landing: the end of the newest hour with data
// such that it and every hour before it are closed. ok is false when the
// oldest hour with data is open, or there is none.
func ClosedWatermark(root string) (wm schemas.Timestamp, ok bool, err error) {
	hours, err := warehouse.ListHours(root, math.MinInt64, math.MaxInt64)
	if err != nil {
		return 0, false, fmt.Errorf("listing events hours: %w", err)
	}
	hour := schemas.Timestamp(time.Hour.Milliseconds())
	for _, h := range hours {
		reason, err := openReason(h.Dir)
		if err != nil {
			return 0, false, err
		}
		if reason != "" {
			break
		}
		files, err := warehouse.DataFiles(h.Dir)
		if err != nil {
			return 0, false, err
		}
		if len(files) > 0 {
			wm, ok = h.Start+hour, true
		}
	}
	return wm, ok, nil
}

// RecomputeFrom is the start of the event time a recompute as of cutoff
// depends on: the oldest of the longest window before the cutoff and, for
// catalogs with lifetime tags, the newest snapshot before the cutoff
// (the lifetime base), or the beginning of time when there is none.
// Pass it with the cutoff to ClosedHours.
func RecomputeFrom(cat *schemas.Catalog, snapshots []schemas.Timestamp, cutoff schemas.Timestamp) schemas.Timestamp {
	from := cutoff - schemas.Timestamp(cat.LongestWindow())
	lifetime := false
	for i := range cat.Tags {
		if cat.Tags[i].Lifetime() {
			lifetime = true
		}
	}
	if !lifetime {
		return from
	}
	base, found := schemas.Timestamp(0), false
	for _, s := range snapshots {
		if s < cutoff && (!found || s > base) {
			base, found = s, true
		}
	}
	if !found {
		return math.MinInt64
	}
	return min(from, base)
}
