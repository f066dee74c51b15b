package kafka

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultPartitions is the partition count of the development broker's
// topics when a TopicSpec leaves it at zero.
const DefaultPartitions = 4

// DefaultBrokerAddr is where the development broker listens by default.
const DefaultBrokerAddr = "127.0.0.1:9092"

// TopicSpec names a topic to create and its partition count (0 takes
// DefaultPartitions). ReplicationFactor is used by EnsureTopics only
// (0 takes the cluster's default).
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
}

// DefaultTopics are the events topic and its dead-letter topic with n
// partitions each (n = 0 takes DefaultPartitions).
func DefaultTopics(n int32) []TopicSpec {
	return []TopicSpec{{Name: DefaultTopic, Partitions: n}, {Name: DefaultTopic + DLQSuffix, Partitions: n}}
}

// Broker is an in-process, in-memory Kafka broker (franz-go's kfake) for
// development and tests. It speaks the real wire protocol, so sarama
// clients in this or other processes use it like a one-node cluster.
// Everything it holds is lost on Close.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	once    sync.Once
	stop    func() bool
}

// StartBroker starts a one-node broker listening on addr ("127.0.0.1:9092",
// or "127.0.0.1:0" for a free port) with the given topics created (nil
// topics: DefaultTopics). The broker stops when ctx is done or on Close.
// The host part of addr is what the broker advertises in its metadata, so
// use an address clients can reach (a loopback address, not ":9092").
func StartBroker(ctx context.Context, addr string, topics []TopicSpec) (*Broker, error) {
	if addr == "" {
		addr = DefaultBrokerAddr
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("broker address %q: %w", addr, err)
	}
	if topics == nil {
		topics = DefaultTopics(0)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("portrait-dev"),
		kfake.DefaultNumPartitions(DefaultPartitions),
		// Consumer groups in tests use short sessions.
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, addr)
		}),
	}
	for _, t := range topics {
		if t.Name == "" {
			return nil, fmt.Errorf("starting broker: topic with an empty name")
		}
		p := t.Partitions
		if p <= 0 {
			p = DefaultPartitions
		}
		opts = append(opts, kfake.SeedTopics(p, t.Name))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting kafka broker on %s: %w", addr, err)
	}
	b := &Broker{cluster: c, addr: c.ListenAddrs()[0]}
	b.stop = context.AfterFunc(ctx, b.shutdown)
	return b, nil
}

// Addr is the host:port the broker listens on and advertises.
func (b *Broker) Addr() string {
	if b == nil {
		return ""
	}
	return b.addr
}

// Brokers is Addr as a bootstrap list for Config.Brokers.
func (b *Broker) Brokers() []string { return []string{b.Addr()} }

// Close stops the broker and drops its data. It is safe on a nil *Broker
// and when called more than once.
func (b *Broker) Close() {
	if b == nil {
		return
	}
	b.stop()
	b.shutdown()
}

func (b *Broker) shutdown() { b.once.Do(b.cluster.Close) }
