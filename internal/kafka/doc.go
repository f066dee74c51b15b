// Package kafka is portrait's Kafka plumbing: the client configuration
// shared by every component that talks to Kafka ([Config] and its sarama
// form), a keyed-JSON [Producer], the consumer-group membership the events
// consumers share ([ConsumerTuning], [OpenGroup], [RunGroup]: consume,
// rejoin after a failed session, close), [EnsureTopics] for real clusters, and an
// in-process development broker ([StartBroker], franz-go's kfake speaking the
// real Kafka wire protocol) that commands start with --embedded-kafka
// ([EmbeddedFlag]) or that `portrait broker` runs for other processes.
//
// The package exports no metrics; the components that consume and produce
// count what they do ([Lag] keeps the per-partition lag series of a gauge a
// consumer registers).
package kafka
