package chbatch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/chtest"
	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
	"github.com/portrait-dev/portrait/schemas/reference"
)

// TestAdaptersOnAFreshDatabase checks Engine and Publisher, which create
// the schema themselves.
func TestAdaptersOnAFreshDatabase(t *testing.T) {
	cat := schemas.MustLoad(catalogPath("taobao"))
	c := chtest.Open(t)
	ctx := testContext(t)
	o := gen.Defaults(9)
	o.Events, o.Span = 300, day
	events := gen.Events(cat, o)
	cutoff := o.Start + day
	want := reference.Evaluate(cat, events, cutoff)

	require.NoError(t, Publisher{Client: c}.Publish(ctx, cat, cutoff, want))
	got, err := ReadProfiles(ctx, c, cat, cutoff)
	require.NoError(t, err)
	requireSameProfiles(t, cat, want, got)

	require.NoError(t, LoadAll(ctx, c, cat, events))
	got, err = Engine{Client: c}.Compute(ctx, cat, cutoff)
	require.NoError(t, err)
	requireSameProfiles(t, cat, want, got)
}
