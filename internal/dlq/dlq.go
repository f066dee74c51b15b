// Package dlq writes records that a consumer cannot use to the
// dead-letter topic, with the reason and the source position in headers,
// so that nothing is dropped silently. Consumers send synchronously and
// only then move their offsets past the record.
//
// Headers of a dead-letter record (its key and value are the original's):
//
//	reason            a short machine-readable cause (Reason* constants)
//	error             the human-readable detail
//	source_topic      topic the record was read from
//	source_partition  its partition
//	source_offset     its offset
package dlq

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/portrait-dev/portrait/internal/kafka"
)

// Reasons a record is dead-lettered.
const (
	// ReasonDecode: the value is not a JSON object.
	ReasonDecode = "decode"
	// ReasonSchema: a field is missing, of the wrong type or not in its
	// enum.
	ReasonSchema = "schema"
	// ReasonKey: the message key differs from the event's key field.
	ReasonKey = "key_mismatch"
	// ReasonFuture: the event time is further ahead of the wall clock
	// than the allowed skew.
	ReasonFuture = "future"
	// ReasonTooLarge: key plus value exceed the maximum record size.
	ReasonTooLarge = "too_large"
)

// Reasons lists every reason, for metrics that pre-create their series.
var Reasons = []string{ReasonDecode, ReasonSchema, ReasonKey, ReasonFuture, ReasonTooLarge}

// Record is one rejected record and why.
type Record struct {
	Reason    string
	Detail    string
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
}

// Sender is the one producer method the writer needs (*kafka.Producer).
type Sender interface {
	Send(ctx context.Context, msgs ...kafka.Message) error
}

// Writer sends dead-letter records to one topic.
type Writer struct {
	s     Sender
	topic string
	// Backoff between attempts; a send is retried until ctx is done.
	Backoff time.Duration
}

// NewWriter writes to topic through s.
func NewWriter(s Sender, topic string) *Writer {
	return &Writer{s: s, topic: topic, Backoff: 200 * time.Millisecond}
}

// Topic is the dead-letter topic.
func (w *Writer) Topic() string { return w.topic }

// Message is the Kafka message for r.
func (w *Writer) Message(r *Record) kafka.Message {
	return kafka.Message{
		Topic: w.topic,
		Key:   r.Key,
		Value: r.Value,
		Headers: []kafka.Header{
			{Key: "reason", Value: r.Reason},
			{Key: "error", Value: r.Detail},
			{Key: "source_topic", Value: r.Topic},
			{Key: "source_partition", Value: strconv.FormatInt(int64(r.Partition), 10)},
			{Key: "source_offset", Value: strconv.FormatInt(r.Offset, 10)},
		},
	}
}

// Send writes the records and waits for their acknowledgement, retrying
// until it succeeds or ctx is done.
func (w *Writer) Send(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(recs))
	for i := range recs {
		msgs[i] = w.Message(&recs[i])
	}
	for attempt := 1; ; attempt++ {
		err := w.s.Send(ctx, msgs...)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("dead-lettering %d records to %s (attempt %d): %w", len(recs), w.topic, attempt, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dead-lettering %d records to %s: %w", len(recs), w.topic, ctx.Err())
		case <-time.After(w.Backoff):
		}
	}
}
