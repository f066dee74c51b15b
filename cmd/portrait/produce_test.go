package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/schemas"
)

func TestProduceFiles(t *testing.T) {
	c := schemas.MustLoad("../../schemas/catalogs/taobao.yaml")
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "a.csv")
	require.NoError(t, os.WriteFile(csvPath, []byte("1,10,100,pv,1511658000\nbad,1,1,pv,1\n2,11,101,buy,1511658001\n"), 0o644))
	jsonPath := filepath.Join(dir, "b.jsonl")
	require.NoError(t, os.WriteFile(jsonPath, []byte(`{"user_id":3,"item_id":12,"category_id":102,"behavior":"fav","ts":"2017-11-26T01:00:02Z"}`+"\n{oops\n"), 0o644))

	for _, raw := range []bool{false, true} {
		t.Run(map[bool]string{false: "skip", true: "raw"}[raw], func(t *testing.T) {
			b, err := kafka.StartBroker(context.Background(), "127.0.0.1:0", []kafka.TopicSpec{{Name: "events", Partitions: 2}})
			require.NoError(t, err)
			defer b.Close()
			cfg := kafka.DefaultConfig()
			cfg.Brokers = b.Brokers()
			p, err := kafka.NewProducer(cfg)
			require.NoError(t, err)
			var progress bytes.Buffer
			st, err := produceFiles(context.Background(), c, p, []string{csvPath, jsonPath}, produceOptions{raw: raw, progress: &progress})
			require.NoError(t, err)
			require.NoError(t, p.Close())
			require.Equal(t, 2, st.bad)
			want := map[string]string{ // key -> value
				"1": `{"user_id":1,"item_id":10,"category_id":100,"behavior":"pv","ts":1511658000000}`,
				"2": `{"user_id":2,"item_id":11,"category_id":101,"behavior":"buy","ts":1511658001000}`,
				"3": `{"user_id":3,"item_id":12,"category_id":102,"behavior":"fav","ts":1511658002000}`,
			}
			if raw {
				want["bad"] = "bad,1,1,pv,1"
				want[""] = "{oops"
			}
			require.Equal(t, len(want), st.sent)
			got := readTopic(t, cfg, len(want))
			require.Equal(t, want, got)
			// Valid messages decode with the speed layer's conversion.
			for k, v := range got {
				if k == "" || k == "bad" {
					continue
				}
				var obj map[string]any
				require.NoError(t, json.Unmarshal([]byte(v), &obj))
				ts, err := schemas.ConvertJSON(&c.Fields[c.Time], obj["ts"])
				require.NoError(t, err)
				require.Equal(t, schemas.Timestamp(1511658000000+1000*(int64(k[0])-'1')), ts)
			}
		})
	}
}

func readTopic(t *testing.T, cfg kafka.Config, n int) map[string]string {
	t.Helper()
	sc, err := cfg.Sarama()
	require.NoError(t, err)
	cons, err := sarama.NewConsumer(cfg.Brokers, sc)
	require.NoError(t, err)
	defer cons.Close() //nolint:errcheck // test reader
	parts, err := cons.Partitions(cfg.Topic)
	require.NoError(t, err)
	msgs := make(chan *sarama.ConsumerMessage, n)
	for _, p := range parts {
		pc, err := cons.ConsumePartition(cfg.Topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		defer pc.Close() //nolint:errcheck // test reader
		go func() {
			for m := range pc.Messages() {
				msgs <- m
			}
		}()
	}
	got := map[string]string{}
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case m := <-msgs:
			got[string(m.Key)] = string(m.Value)
		case <-timeout:
			t.Fatalf("read %d of %d messages", len(got), n)
		}
	}
	return got
}

type countingSender struct {
	batches []int
	at      []time.Time
}

func (s *countingSender) Send(_ context.Context, msgs ...kafka.Message) error {
	s.batches = append(s.batches, len(msgs))
	s.at = append(s.at, time.Now())
	return nil
}

func TestProduceRate(t *testing.T) {
	c := schemas.MustLoad("../../schemas/catalogs/taobao.yaml")
	path := filepath.Join(t.TempDir(), "a.csv")
	var buf bytes.Buffer
	for i := range 30 {
		buf.WriteString("1,10,100,pv,")
		buf.WriteString(time.Unix(1511658000+int64(i), 0).Format("2006-01-02T15:04:05Z"))
		buf.WriteString("\n")
	}
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	s := &countingSender{}
	start := time.Now()
	st, err := produceFiles(context.Background(), c, s, []string{path}, produceOptions{rate: 100})
	require.NoError(t, err)
	require.Equal(t, 30, st.sent)
	// 30 messages at 100/s take 0.3 s, sent ten at a time.
	require.GreaterOrEqual(t, time.Since(start), 280*time.Millisecond)
	require.Equal(t, []int{10, 10, 10}, s.batches)
	require.True(t, sort.SliceIsSorted(s.at, func(i, j int) bool { return s.at[i].Before(s.at[j]) }))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st, err = produceFiles(ctx, c, s, []string{path}, produceOptions{rate: 1})
	require.ErrorIs(t, err, context.Canceled)
	require.Positive(t, st.elapsed, "a stopped run reports how long it ran")
}
