package kafka

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "kafka.brokers: at least one broker address is required"},
		{"bad broker", func(c *Config) { c.Brokers = []string{"localhost:9092", "nohost"} }, `kafka.brokers[1]: "nohost" is not a host:port address`},
		{"same dlq", func(c *Config) { c.DLQTopic = c.Topic }, `kafka.dlq_topic: must differ from the events topic "events"`},
		{"fetch min", func(c *Config) { c.FetchMin = -1 }, "kafka.fetch_min_bytes: -1 must be at least 1"},
		{"fetch max below default", func(c *Config) { c.FetchMax = 10 }, "kafka.fetch_max_bytes: 10 must be 0 (no limit) or at least fetch_default_bytes (1048576)"},
		{"max message", func(c *Config) { c.MaxMessageBytes = -5 }, "kafka.max_message_bytes: -5 must be at least 1"},
		{"version", func(c *Config) { c.Version = "two" }, `kafka.version: "two": invalid version ` + "`two`"},
		{"sasl mechanism", func(c *Config) { c.SASL.Mechanism = "GSSAPI" }, `kafka.sasl.mechanism: "GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{"sasl user", func(c *Config) { c.SASL.Mechanism = SASLSCRAMSHA512 }, "kafka.sasl.user: required with mechanism SCRAM-SHA-512"},
		{"tls files without tls", func(c *Config) { c.TLS.CAFile = "ca.pem" }, "kafka.tls.enabled: files are set but TLS is not enabled"},
		{"tls cert without key", func(c *Config) { c.TLS = TLSConfig{Enabled: true, CertFile: "c.pem"} }, "kafka.tls.cert_file: cert_file and key_file go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Brokers = []string{"127.0.0.1:9092"}
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

func TestConfigYAMLAndSarama(t *testing.T) {
	src := `
brokers: [k1:9092, k2:9092]
topic: clicks
group: portrait-speed
sasl: {mechanism: SCRAM-SHA-256, user: u, password: p}
fetch_max_bytes: 4194304
version: 3.6.0
`
	var c Config
	require.NoError(t, yaml.Unmarshal([]byte(src), &c))
	c.ApplyDefaults()
	require.NoError(t, c.Validate())
	require.Equal(t, "clicks.dlq", c.DLQTopic)
	require.Equal(t, "portrait", c.ClientID)

	sc, err := c.Sarama()
	require.NoError(t, err)
	require.Equal(t, sarama.V3_6_0_0, sc.Version)
	require.True(t, sc.Net.SASL.Enable)
	require.Equal(t, sarama.SASLMechanism(SASLSCRAMSHA256), sc.Net.SASL.Mechanism)
	require.NotNil(t, sc.Net.SASL.SCRAMClientGeneratorFunc)
	require.Equal(t, int32(4194304), sc.Consumer.Fetch.Max)
	require.Equal(t, int64(sarama.OffsetOldest), sc.Consumer.Offsets.Initial)
	require.False(t, sc.Producer.Idempotent)
	require.True(t, sc.Producer.Return.Successes)

	c.SASL.Mechanism = "bogus"
	_, err = c.Sarama()
	require.ErrorContains(t, err, "kafka.sasl.mechanism")
}
