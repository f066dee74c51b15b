package benchrun

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portrait-dev/portrait/internal/cputime"
	"github.com/portrait-dev/portrait/internal/kafka"
)

// benchBroker is the Kafka broker of the Kafka stages: kfake in this
// process, or `portrait broker` as a child process, whose CPU is then
// measured apart from the pipeline's (a production broker runs on other
// machines; kfake's cost is not Kafka's).
type benchBroker struct {
	addr  string
	inner *kafka.Broker // in process
	cmd   *exec.Cmd     // child process
}

// startBroker starts the broker with the events topic and its DLQ of
// partitions partitions each. With command set, it runs command plus
// --listen and --partitions flags and reads the address the child prints
// on its first line of standard output.
func startBroker(ctx context.Context, command []string, partitions int32) (*benchBroker, error) {
	if len(command) == 0 {
		b, err := kafka.StartBroker(ctx, "127.0.0.1:0", kafka.DefaultTopics(partitions))
		if err != nil {
			return nil, err
		}
		return &benchBroker{addr: b.Addr(), inner: b}, nil
	}
	args := append(command[1:len(command):len(command)], "--listen", "127.0.0.1:0", "--partitions", strconv.Itoa(int(partitions)), "--log-level", "warn")
	cmd := exec.Command(command[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the broker process %v: %w", command, err)
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		s.Scan()
		line <- strings.TrimSpace(s.Text())
		for s.Scan() { // keep the pipe drained
		}
	}()
	select {
	case addr := <-line:
		if addr == "" {
			_ = cmd.Process.Kill()
			return nil, fmt.Errorf("broker process %v exited without printing its address: %v", command, cmd.Wait())
		}
		return &benchBroker{addr: addr, cmd: cmd}, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("broker process %v printed no address in 30s", command)
	}
}

// cpu is the child broker's user+system CPU time so far (0 in process).
func (b *benchBroker) cpu() time.Duration {
	if b.cmd == nil {
		return 0
	}
	return cputime.Process(b.cmd.Process.Pid)
}

// Close stops the broker (SIGTERM to the child, then waits for it).
func (b *benchBroker) Close() {
	if b.inner != nil {
		b.inner.Close()
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	_ = b.cmd.Wait()
}
