package kafkatest

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/schemas"
)

// TestProduceAndRead sends encoded events with both partitioners and
// reads them back where Send said they landed.
func TestProduceAndRead(t *testing.T) {
	c := schemas.MustLoad("../../schemas/catalogs/taobao.yaml")
	o := gen.Defaults(1)
	o.Users, o.Events, o.Partitions = 10, 40, 2
	events := gen.Events(c, o)
	for _, tc := range []struct {
		name      string
		manual    bool
		partition int32
	}{{"by key", false, -1}, {"manual", true, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			kc := StartBroker(t, "events", 2)
			require.Equal(t, "events.dlq", kc.DLQTopic)
			recs := EncodeEvents(t, c, events, tc.partition)
			at := NewProducer(t, kc, tc.manual).Send(t, recs)
			require.Len(t, at, len(recs))
			next := map[int32]int64{}
			for i, p := range at {
				if tc.manual {
					require.Equal(t, tc.partition, p.Partition)
				}
				require.Equal(t, next[p.Partition], p.Offset, "record %d", i)
				next[p.Partition]++
			}
			got := ReadTopic(t, kc, kc.Topic, len(recs))
			var gotValues, wantValues []string
			for i := range got {
				gotValues = append(gotValues, got[i].Key+" "+got[i].Value)
				wantValues = append(wantValues, string(recs[i].Key)+" "+string(recs[i].Value))
			}
			sort.Strings(gotValues)
			sort.Strings(wantValues)
			require.Equal(t, wantValues, gotValues)
		})
	}
}

// TestChildProcess is the child of TestStartChild.
func TestChildProcess(t *testing.T) {
	args := ChildArgs(t, "OUT", "MSG")
	require.NoError(t, os.WriteFile(args["OUT"], []byte(args["MSG"]), 0o644))
}

func TestStartChild(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	cmd := StartChild(t, "TestChildProcess", map[string]string{"OUT": out, "MSG": "hello"})
	require.NoError(t, cmd.Wait())
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "hello", string(b))
}
