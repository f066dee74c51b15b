package benchrun

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/portrait-dev/portrait/internal/gen"
	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/internal/source"
	"github.com/portrait-dev/portrait/schemas"
)

// ingestFile is the lookup stage's live ingest written ahead for a
// producer child process: the events produce would send, as CSV.
type ingestFile struct {
	path string
	// sizes[i] sums the key and value bytes of the first i*sizeEvery
	// messages, so that the bytes of the first n can be told afterwards.
	sizes []int64
	total int64 // bytes of all the messages
	n     int
}

const sizeEvery = 1024

// bytesOf is the key and value bytes of the first n messages of the file
// (exact at multiples of sizeEvery, interpolated in between).
func (f *ingestFile) bytesOf(n int64) int64 {
	if n <= 0 || f.n == 0 {
		return 0
	}
	if n >= int64(f.n) {
		return f.total
	}
	i := n / sizeEvery
	next := f.total
	if int(i+1) < len(f.sizes) {
		next = f.sizes[i+1]
	}
	span := min(int64(sizeEvery), int64(f.n)-i*sizeEvery)
	return f.sizes[i] + (next-f.sizes[i])*(n-i*sizeEvery)/span
}

// writeIngest writes the count events of seed that produce would send
// (the same generator options) to path as CSV, for `portrait produce`,
// and records the sizes of the messages they make.
func writeIngest(c Config, path string, seed uint64, count int) (*ingestFile, error) {
	in := &ingestFile{path: path}
	var value []byte
	err := writeCSV(path, c.Catalog, ingestOptions(c, seed, count), func(e *schemas.Event) {
		if in.n%sizeEvery == 0 {
			in.sizes = append(in.sizes, in.total)
		}
		value = source.AppendJSON(value[:0], c.Catalog, e.Values)
		in.total += int64(len(source.Key(e.Values[c.Catalog.Key])) + len(value))
		in.n++
	})
	if err != nil {
		return nil, fmt.Errorf("writing the ingest events to %s: %w", path, err)
	}
	return in, nil
}

// ingestOptions are the generator options of the Kafka stages' events.
func ingestOptions(c Config, seed uint64, count int) gen.Options {
	return gen.Options{Seed: seed, Users: c.Users, Events: count, Start: start, Span: liveSpan.Milliseconds(), Partitions: 1, Cardinality: 5000}
}

// producerProcess is `portrait produce` sending the ingest file as a child
// process, the way producers are other services in production: its CPU
// and allocations stay out of the process under test.
type producerProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's, valid once exited is closed
	// grace is how long stop waits after SIGTERM before killing.
	grace time.Duration
}

// startProducer runs command plus --brokers, --topic, --rate, --batch
// and --log-level flags and the file to send. Its requests are as large
// as the in-process ingest's (ingestBatch, not produce's default of 500),
// so that the broker's and the speed layer's work per event does not
// change with where the ingest runs. Its standard output is
// discarded; its standard error goes to ours but for its per-second
// progress lines and the cancellation it reports once stopped.
func startProducer(command []string, brokers []string, topic string, rate int, file string) (*producerProcess, error) {
	args := append(command[1:len(command):len(command)], "--brokers", strings.Join(brokers, ","), "--topic", topic,
		"--rate", strconv.Itoa(rate), "--batch", strconv.Itoa(ingestBatch), "--log-level", "warn", file)
	p := &producerProcess{exited: make(chan struct{}), grace: 5 * time.Second}
	p.cmd = exec.Command(command[0], args...)
	p.cmd.Stderr = &lineFilter{w: os.Stderr, drop: progressLine}
	p.cmd.WaitDelay = time.Second // a grandchild holding stderr open does not hold up Wait
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the producer process %v: %w", command, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// progressLine reports the child's standard error lines to drop: its
// progress ("produce: 1500 sent, 0 bad, 50000 msg/s").
func progressLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("produce: "))
	return ok && len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9'
}

// stop ends the child (SIGTERM, then SIGKILL after the grace period) and
// returns the CPU time it used. An error says it had exited before with a
// failure.
func (p *producerProcess) stop() (time.Duration, error) {
	var early error
	select {
	case <-p.exited:
		if p.err != nil {
			early = fmt.Errorf("producer process %v exited before the lookups ended: %w", p.cmd.Args, p.err)
		}
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(p.grace):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	st := p.cmd.ProcessState
	if st == nil {
		return 0, early
	}
	return st.UserTime() + st.SystemTime(), early
}

// lineFilter writes the lines for which drop is false to w.
type lineFilter struct {
	mu   sync.Mutex
	w    io.Writer
	drop func(line []byte) bool
	buf  []byte
}

func (f *lineFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			break
		}
		if line := f.buf[:i+1]; !f.drop(line) {
			if _, err := f.w.Write(line); err != nil {
				return len(p), err
			}
		}
		f.buf = f.buf[i+1:]
	}
	if len(f.buf) == 0 {
		f.buf = nil // let the array go
	}
	return len(p), nil
}

// topicRecords sums the end offsets of topic's partitions: the records
// produced to it (kfake writes no control records, and nothing is
// deleted). It reads until two reads 50 ms apart agree, so that a produce
// request the broker was still handling when its sender exited counts.
func topicRecords(kc kafka.Config, topic string) (int64, error) {
	sc, err := kc.Sarama()
	if err != nil {
		return 0, err
	}
	client, err := sarama.NewClient(kc.Brokers, sc)
	if err != nil {
		return 0, fmt.Errorf("connecting to %v: %w", kc.Brokers, err)
	}
	defer client.Close()
	read := func() (int64, error) {
		parts, err := client.Partitions(topic)
		if err != nil {
			return 0, err
		}
		var total int64
		for _, p := range parts {
			n, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return 0, fmt.Errorf("end offset of %s/%d: %w", topic, p, err)
			}
			total += n
		}
		return total, nil
	}
	last, err := read()
	for i := 0; err == nil && i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		var n int64
		if n, err = read(); err == nil && n == last {
			return n, nil
		}
		last = n
	}
	return last, err
}

// ingestPath is where the pre-fill writes the lookup stage's ingest.
func ingestPath(dir string) string { return filepath.Join(dir, "ingest.csv") }
