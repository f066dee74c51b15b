package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/IBM/sarama"
)

// Defaults for a zero Config.
const (
	DefaultTopic           = "events"
	DefaultClientID        = "portrait"
	DefaultVersion         = "2.8.0"
	DefaultFetchMin        = 1
	DefaultFetchDefault    = 1 << 20 // 1 MiB
	DefaultMaxMessageBytes = 1 << 20 // 1 MiB, the broker's default message.max.bytes
	// DLQSuffix is appended to the events topic to name its dead-letter topic.
	DLQSuffix = ".dlq"
)

// SASL mechanisms Config accepts.
const (
	SASLPlain       = "PLAIN"
	SASLSCRAMSHA256 = "SCRAM-SHA-256"
	SASLSCRAMSHA512 = "SCRAM-SHA-512"
)

// Config is how a portrait component reaches Kafka. The zero value plus
// Brokers is usable once ApplyDefaults has filled the rest.
type Config struct {
	// Brokers are the bootstrap broker addresses, host:port.
	Brokers []string `yaml:"brokers"`
	// Topic is the events topic (default "events").
	Topic string `yaml:"topic"`
	// DLQTopic takes records that cannot be decoded or validated
	// (default Topic + ".dlq").
	DLQTopic string `yaml:"dlq_topic"`
	// Group is the consumer group id; each consuming component sets its own
	// (portrait-speed, portrait-landing).
	Group string `yaml:"group"`
	// ClientID is sent to the brokers with every request (default "portrait").
	ClientID string    `yaml:"client_id"`
	TLS      TLSConfig `yaml:"tls"`
	SASL     SASL      `yaml:"sasl"`
	// FetchMin, FetchDefault and FetchMax are the consumer's fetch sizes in
	// bytes (sarama Consumer.Fetch.Min/Default/Max; FetchMax 0 = no limit).
	FetchMin     int32 `yaml:"fetch_min_bytes"`
	FetchDefault int32 `yaml:"fetch_default_bytes"`
	FetchMax     int32 `yaml:"fetch_max_bytes"`
	// MaxMessageBytes is the largest message the producer sends.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// Version is the Kafka protocol version sarama speaks, e.g. "2.8.0"
	// (the default, which kfake and every broker since 2.8 accept).
	Version string `yaml:"version"`
}

// TLSConfig enables TLS to the brokers. CAFile is optional (system roots
// otherwise); CertFile and KeyFile together give a client certificate.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL authenticates to the brokers; an empty Mechanism disables it.
type SASL struct {
	// Mechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	Mechanism string `yaml:"mechanism"`
	User      string `yaml:"user"`
	Password  string `yaml:"password"`
}

// DefaultConfig returns the defaults with no brokers.
func DefaultConfig() Config {
	var c Config
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills the fields left at their zero value.
func (c *Config) ApplyDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.DLQTopic == "" {
		c.DLQTopic = c.Topic + DLQSuffix
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.FetchMin == 0 {
		c.FetchMin = DefaultFetchMin
	}
	if c.FetchDefault == 0 {
		c.FetchDefault = DefaultFetchDefault
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
}

// Validate reports the first bad field by its yaml name. It expects
// ApplyDefaults to have run.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka.brokers: at least one broker address is required")
	}
	for i, b := range c.Brokers {
		if b == "" || !strings.Contains(b, ":") {
			return fmt.Errorf("kafka.brokers[%d]: %q is not a host:port address", i, b)
		}
	}
	if c.Topic == "" {
		return errors.New("kafka.topic: must not be empty")
	}
	if c.DLQTopic == c.Topic {
		return fmt.Errorf("kafka.dlq_topic: must differ from the events topic %q", c.Topic)
	}
	if c.FetchMin < 1 {
		return fmt.Errorf("kafka.fetch_min_bytes: %d must be at least 1", c.FetchMin)
	}
	if c.FetchDefault < 1 {
		return fmt.Errorf("kafka.fetch_default_bytes: %d must be at least 1", c.FetchDefault)
	}
	if c.FetchMax < 0 || (c.FetchMax > 0 && c.FetchMax < c.FetchDefault) {
		return fmt.Errorf("kafka.fetch_max_bytes: %d must be 0 (no limit) or at least fetch_default_bytes (%d)", c.FetchMax, c.FetchDefault)
	}
	if c.MaxMessageBytes < 1 {
		return fmt.Errorf("kafka.max_message_bytes: %d must be at least 1", c.MaxMessageBytes)
	}
	if _, err := sarama.ParseKafkaVersion(c.Version); err != nil {
		return fmt.Errorf("kafka.version: %q: %w", c.Version, err)
	}
	switch c.SASL.Mechanism {
	case "":
	case SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512:
		if c.SASL.User == "" {
			return fmt.Errorf("kafka.sasl.user: required with mechanism %s", c.SASL.Mechanism)
		}
	default:
		return fmt.Errorf("kafka.sasl.mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASL.Mechanism)
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.KeyFile != "") {
		return errors.New("kafka.tls.enabled: files are set but TLS is not enabled")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("kafka.tls.cert_file: cert_file and key_file go together")
	}
	return nil
}

// Sarama builds the sarama client configuration: consumers start at the
// oldest offset when their group has none, producers wait for all in-sync
// replicas and are not idempotent, and SyncProducers get their successes.
func (c Config) Sarama() (*sarama.Config, error) {
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	v, _ := sarama.ParseKafkaVersion(c.Version)
	sc := sarama.NewConfig()
	sc.Version = v
	sc.ClientID = c.ClientID
	sc.Consumer.Fetch.Min = c.FetchMin
	sc.Consumer.Fetch.Default = c.FetchDefault
	sc.Consumer.Fetch.Max = c.FetchMax
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Return.Errors = true
	sc.Producer.MaxMessageBytes = c.MaxMessageBytes
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = false
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Metadata.AllowAutoTopicCreation = false

	if c.TLS.Enabled {
		tc, err := c.TLS.build()
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if m := c.SASL.Mechanism; m != "" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Mechanism = sarama.SASLMechanism(m)
		sc.Net.SASL.User = c.SASL.User
		sc.Net.SASL.Password = c.SASL.Password
		switch m {
		case SASLSCRAMSHA256:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha256Gen} }
		case SASLSCRAMSHA512:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha512Gen} }
		}
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("building sarama config: %w", err)
	}
	return sc, nil
}

func (t TLSConfig) build() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in for development clusters
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert_file: loading key pair: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
