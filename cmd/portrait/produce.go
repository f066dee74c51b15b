package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portrait-dev/portrait/internal/kafka"
	"github.com/portrait-dev/portrait/internal/source"
	"github.com/portrait-dev/portrait/schemas"
)

func init() { commands = append(commands, newProduceCmd()) }

func newProduceCmd() *cobra.Command {
	var (
		catalogPath, brokers, format string
		opts                         produceOptions
		cfg                          = kafka.DefaultConfig()
		emb                          *kafka.EmbeddedFlag
	)
	cmd := &cobra.Command{
		Use:   "produce --catalog C (--brokers B | --embedded-kafka) [--topic T] [--rate N] FILE...",
		Short: "Send events from CSV or JSON Lines files to the Kafka events topic",
		Long: `produce reads event rows from CSV files (no header: catalog field order; a
first line whose every cell names a field, each field once: a header, columns
by name) and JSON Lines files (one object per line, other keys ignored), .gz
ones decompressed, with the same rules as import: one row per line, blank
lines skipped, a final line without a trailing newline rejected as truncated.
It validates each row against the catalog and sends it to Kafka as a JSON
object keyed by the entity key (decimal for int64 keys). Timestamps are sent as unix milliseconds
(RFC 3339 or unix seconds for fields declared in those formats), which the
speed layer reads back exactly. A bad row is reported with file:line and
skipped, or sent unchanged with --raw (to feed the dead-letter queue in
tests). "-" reads standard input (give --format).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			ctx := cmd.Context()
			c, err := schemas.Load(catalogPath)
			if err != nil {
				return err
			}
			if opts.format, err = source.ParseFormat(format); err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			if brokers != "" {
				cfg.Brokers = strings.Split(brokers, ",")
			}
			cfg.DLQTopic = "" // derived from --topic
			cfg.ApplyDefaults()
			if !emb.Enabled() && len(cfg.Brokers) == 0 {
				return errors.New("give --brokers or --embedded-kafka")
			}
			b, err := emb.Start(ctx, &cfg, slog.Default())
			if err != nil {
				return err
			}
			defer b.Close()
			p, err := kafka.NewProducer(cfg)
			if err != nil {
				return err
			}
			opts.progress = os.Stderr
			st, err := produceFiles(ctx, c, p, files, opts)
			how := "from"
			if err != nil && ctx.Err() != nil {
				// Stopped by a signal: what was sent is sent.
				how, err = "(stopped) from", nil
			}
			if cerr := p.Close(); err == nil {
				err = cerr
			}
			fmt.Fprintf(os.Stderr, "produce: sent %d messages to %s (%d bad rows %s) %s %d files in %s\n",
				st.sent, cfg.Topic, st.bad, map[bool]string{true: "sent raw", false: "skipped"}[opts.raw], how, len(files), st.elapsed.Round(time.Millisecond))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&catalogPath, "catalog", "schemas/catalogs/taobao.yaml", "catalog file")
	f.StringVar(&brokers, "brokers", "", "Kafka bootstrap brokers, comma-separated")
	f.StringVar(&cfg.Topic, "topic", kafka.DefaultTopic, "topic to send to")
	f.StringVar(&cfg.Version, "kafka-version", kafka.DefaultVersion, "Kafka protocol version to speak")
	f.StringVar(&format, "format", "", "input format, csv or jsonl (default: from each file's name)")
	f.Float64Var(&opts.rate, "rate", 0, "messages per second (0: as fast as possible)")
	f.IntVar(&opts.batch, "batch", 500, "messages per produce request")
	f.BoolVar(&opts.raw, "raw", false, "send rows that fail validation unchanged instead of skipping them")
	f.IntVar(&opts.maxErrors, "max-errors", 20, "bad rows to report individually (all are counted)")
	emb = kafka.AddEmbeddedFlag(f)
	return cmd
}

type produceOptions struct {
	format    source.Format
	rate      float64
	batch     int
	raw       bool
	maxErrors int
	progress  io.Writer // a progress line every second; nil: none
	log       *slog.Logger
	now       func() time.Time
}

type produceStats struct {
	sent, bad int
	elapsed   time.Duration
}

// sender is what produceFiles needs of a Kafka producer.
type sender interface {
	Send(ctx context.Context, msgs ...kafka.Message) error
}

// produceFiles sends every row of files through p, paced to opts.rate.
func produceFiles(ctx context.Context, c *schemas.Catalog, p sender, files []string, opts produceOptions) (st produceStats, err error) {
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.log == nil {
		opts.log = slog.Default()
	}
	if opts.batch <= 0 {
		opts.batch = 500
	}
	if opts.rate > 0 {
		// Small batches keep the pace smooth: about ten sends a second.
		opts.batch = max(1, min(opts.batch, int(opts.rate/10)))
	}
	start := opts.now()
	defer func() { st.elapsed = opts.now().Sub(start) }()
	lastProgress := start
	batch := make([]kafka.Message, 0, opts.batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if opts.rate > 0 {
			due := start.Add(time.Duration(float64(st.sent+len(batch)) / opts.rate * float64(time.Second)))
			if d := due.Sub(opts.now()); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
		}
		if err := p.Send(ctx, batch...); err != nil {
			return fmt.Errorf("sending messages: %w", err)
		}
		st.sent += len(batch)
		batch = batch[:0]
		if now := opts.now(); opts.progress != nil && now.Sub(lastProgress) >= time.Second {
			lastProgress = now
			fmt.Fprintf(opts.progress, "produce: %d sent, %d bad, %.0f msg/s\n", st.sent, st.bad, float64(st.sent)/now.Sub(start).Seconds())
		}
		return nil
	}
	for _, path := range files {
		var r *source.Reader
		if path == "-" {
			if opts.format == "" {
				return st, errors.New("reading standard input needs --format")
			}
			r = source.NewReader(c, os.Stdin, "stdin", opts.format)
		} else {
			var err error
			if r, err = source.Open(c, path, opts.format); err != nil {
				return st, err
			}
		}
		err := func() error {
			defer r.Close() //nolint:errcheck // read-only
			for {
				row, err := r.Next()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				var m kafka.Message
				if row.Err != nil {
					st.bad++
					if st.bad <= opts.maxErrors {
						opts.log.Warn("bad row", "err", row.Err)
					} else if st.bad == opts.maxErrors+1 {
						opts.log.Warn("more bad rows; counting only")
					}
					if !opts.raw {
						continue
					}
					m = kafka.Message{Key: []byte(row.Key), Value: append([]byte(nil), row.Raw...)}
				} else {
					m = kafka.Message{Key: []byte(source.Key(row.Values[c.Key])), Value: source.AppendJSON(nil, c, row.Values)}
				}
				batch = append(batch, m)
				if len(batch) == cap(batch) {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}()
		if err != nil {
			return st, err
		}
	}
	return st, flush()
}
