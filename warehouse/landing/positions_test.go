package landing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/schemas"
)

func TestPositionsReadsWhatTheLandingWrote(t *testing.T) {
	root := t.TempDir()
	got, err := Positions(root)
	require.NoError(t, err)
	require.Empty(t, got, "nothing landed yet")

	at := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
	require.NoError(t, writePartitionState(root, partitionState{Topic: "events", Partition: 1, Next: 42, Reached: 1511658000000, HasReached: true, Written: at}))
	require.NoError(t, writePartitionState(root, partitionState{Topic: "events", Partition: 0, Next: 7, Written: at}))
	got, err = Positions(root)
	require.NoError(t, err)
	require.Equal(t, []Position{
		{Topic: "events", Partition: 0, Next: 7, Written: at},
		{Topic: "events", Partition: 1, Next: 42, Reached: schemas.Timestamp(1511658000000), HasReached: true, Written: at},
	}, got)
}
