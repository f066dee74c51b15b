package benchrun

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/internal/source"
	"github.com/portrait-dev/portrait/schemas"
)

// TestIngestFileSendsWhatProduceSends checks that the CSV the pre-fill
// writes for `portrait produce` reads back (as produce reads it) into
// messages byte-identical in key and value to those the in-process
// ingest sends, for every catalog, and that the recorded sizes add up.
func TestIngestFileSendsWhatProduceSends(t *testing.T) {
	paths, err := filepath.Glob("../../schemas/catalogs/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no catalogs: %v", err)
	}
	const count = 3*sizeEvery + 100
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := schemas.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{Catalog: c, Users: 500, Seed: 3}
			in, err := writeIngest(cfg, filepath.Join(t.TempDir(), "ingest.csv"), cfg.Seed+1, count)
			if err != nil {
				t.Fatal(err)
			}
			type msg struct{ key, value []byte }
			var want []msg // what (*streamBench).produce sends
			var cum []int64
			var sum int64
			err = gen.Stream(c, ingestOptions(cfg, cfg.Seed+1, count), func(e *schemas.Event) error {
				m := msg{[]byte(source.Key(e.Values[c.Key])), source.AppendJSON(nil, c, e.Values)}
				want = append(want, m)
				cum = append(cum, sum)
				sum += int64(len(m.key) + len(m.value))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			cum = append(cum, sum)
			r, err := source.Open(c, in.path, "")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			i := 0
			for ; ; i++ {
				row, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if row.Err != nil {
					t.Fatalf("row %d: %v", i, row.Err)
				}
				key, value := []byte(source.Key(row.Values[c.Key])), source.AppendJSON(nil, c, row.Values) // as produceFiles
				if i >= len(want) || !bytes.Equal(key, want[i].key) || !bytes.Equal(value, want[i].value) {
					t.Fatalf("message %d: key %q value %s, want key %q value %s", i, key, value, want[min(i, len(want)-1)].key, want[min(i, len(want)-1)].value)
				}
			}
			if i != count || in.n != count {
				t.Fatalf("%d rows read, %d written, want %d", i, in.n, count)
			}
			for _, n := range []int{0, sizeEvery, 2 * sizeEvery, 3 * sizeEvery, count, count + 5} {
				if got, want := in.bytesOf(int64(n)), cum[min(n, count)]; got != want {
					t.Errorf("bytesOf(%d) = %d, want %d", n, got, want)
				}
			}
			if got, lo, hi := in.bytesOf(sizeEvery+10), cum[sizeEvery+1], cum[sizeEvery+20]; got < lo || got > hi {
				t.Errorf("bytesOf(%d) = %d, not between %d and %d", sizeEvery+10, got, lo, hi)
			}
		})
	}
}

// TestProducerProcessStop checks the producer child's life: stop ends a
// running one with SIGTERM, kills one that ignores it after the grace
// period, reports one that failed before the end, and returns its CPU.
func TestProducerProcessStop(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		early        bool // exits on its own before stop
		wantErr      bool
	}{
		{name: "terminates", script: "exec sleep 60"},
		{name: "ignores SIGTERM", script: "trap '' TERM; exec sleep 60"},
		{name: "spins", script: "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exec sleep 60"},
		{name: "finished", script: "exit 0", early: true},
		{name: "failed", script: "exit 3", early: true, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := startProducer([]string{"sh", "-c", tc.script, "sh"}, []string{"127.0.0.1:1"}, "events", 10, "f.csv")
			if err != nil {
				t.Fatal(err)
			}
			p.grace = 300 * time.Millisecond
			if tc.early {
				<-p.exited
			} else {
				time.Sleep(200 * time.Millisecond)
			}
			t0 := time.Now()
			cpu, err := p.stop()
			if (err != nil) != tc.wantErr {
				t.Fatalf("stop: %v, want error %v", err, tc.wantErr)
			}
			if took := time.Since(t0); took > 3*time.Second {
				t.Fatalf("stop took %v", took)
			}
			if st := p.cmd.ProcessState; st == nil || st.Exited() != tc.early {
				t.Fatalf("process state %v, want exited on its own %v", st, tc.early)
			}
			if tc.name == "spins" && cpu <= 0 {
				t.Errorf("CPU %v of a process that spun", cpu)
			}
		})
	}
}

// TestProducerArgs checks the flags the child gets after its command.
func TestProducerArgs(t *testing.T) {
	p, err := startProducer([]string{"sh", "-c", "exit 0", "sh", "--catalog", "c.yaml"}, []string{"a:1", "b:2"}, "ev", 50000, "/d/ingest.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.stop(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(p.cmd.Args[4:], " ")
	want := "--catalog c.yaml --brokers a:1,b:2 --topic ev --rate 50000 --batch 4096 --log-level warn /d/ingest.csv"
	if got != want {
		t.Fatalf("args %q, want %q", got, want)
	}
}

// TestLineFilter checks that the child's progress lines are dropped and
// the others kept, whatever the writes' boundaries.
func TestLineFilter(t *testing.T) {
	var out bytes.Buffer
	f := &lineFilter{w: &out, drop: progressLine}
	in := "produce: 500 sent, 0 bad, 49800 msg/s\nlevel=WARN msg=\"bad row\"\nportrait: context canceled\n"
	for i := 0; i < len(in); i += 7 { // split mid-line
		if _, err := f.Write([]byte(in[i:min(i+7, len(in))])); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprint(f, "produce: sent 1000 messages to events (0 bad rows skipped) (stopped) from 1 files in 1s\npartial")
	want := "level=WARN msg=\"bad row\"\nportrait: context canceled\nproduce: sent 1000 messages to events (0 bad rows skipped) (stopped) from 1 files in 1s\n"
	if out.String() != want {
		t.Fatalf("wrote %q, want %q", out.String(), want)
	}
}

// TestTopicRecords checks that the topic's end offsets count the records
// produced to it across partitions.
func TestTopicRecords(t *testing.T) {
	ctx := context.Background()
	b, err := kafka.StartBroker(ctx, "127.0.0.1:0", kafka.DefaultTopics(benchPartitions))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kc := kafka.DefaultConfig()
	kc.Brokers = b.Brokers()
	p, err := kafka.NewProducer(kc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 1234
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte("{}")}
	}
	if err := p.Send(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	got, err := topicRecords(kc, kc.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("topicRecords = %d, want %d", got, n)
	}
}
