package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// TestRunConfigPrecedence: defaults < config file < environment < flags.
func TestRunConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "portrait.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
warehouse: /from/file
kafka:
  brokers: [file:9092]
api:
  listen: 127.0.0.1:1
speed:
  state_dir: /state/file
`), 0o644))
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c runResult)
	}{
		{"file", nil, []string{"--config", file}, func(t *testing.T, c runResult) {
			require.Equal(t, "/from/file", c.Warehouse)
			require.Equal(t, []string{"file:9092"}, c.Brokers)
			require.Equal(t, "127.0.0.1:1", c.Listen)
			require.Equal(t, "/state/file", c.State)
		}},
		{"env over file", map[string]string{"PORTRAIT_WAREHOUSE": "/from/env", "PORTRAIT_KAFKA_BROKERS": "env:1,env:2"},
			[]string{"--config", file}, func(t *testing.T, c runResult) {
				require.Equal(t, "/from/env", c.Warehouse)
				require.Equal(t, []string{"env:1", "env:2"}, c.Brokers)
				require.Equal(t, "/state/file", c.State)
			}},
		{"flags over env", map[string]string{"PORTRAIT_WAREHOUSE": "/from/env", "PORTRAIT_API_LISTEN": "127.0.0.1:2"},
			[]string{"--config", file, "--warehouse", "/from/flag", "--brokers", "flag:9", "--state", "/state/flag"}, func(t *testing.T, c runResult) {
				require.Equal(t, "/from/flag", c.Warehouse)
				require.Equal(t, []string{"flag:9"}, c.Brokers)
				require.Equal(t, "127.0.0.1:2", c.Listen)
				require.Equal(t, "/state/flag", c.State)
			}},
		{"embedded flag drops brokers", nil, []string{"--config", file, "--embedded-kafka=127.0.0.1:0"}, func(t *testing.T, c runResult) {
			require.Empty(t, c.Brokers)
			require.Equal(t, "127.0.0.1:0", c.Embedded)
		}},
		{"defaults: embedded broker", nil, nil, func(t *testing.T, c runResult) {
			require.Empty(t, c.Brokers)
			require.Equal(t, "127.0.0.1:9092", c.Embedded)
			require.Equal(t, "data/warehouse", c.Warehouse)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var fl runFlags
			cmd := &cobra.Command{Use: "run"}
			addRunFlags(cmd, &fl)
			require.NoError(t, cmd.ParseFlags(tc.args))
			c, err := runConfig(cmd, &fl)
			require.NoError(t, err)
			tc.check(t, runResult{Warehouse: c.Warehouse, Brokers: c.Kafka.Brokers, Listen: c.API.Listen, State: c.Speed.StateDir, Embedded: c.EmbeddedKafka.Addr})
		})
	}

	t.Run("bad file names the field", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		require.NoError(t, os.WriteFile(bad, []byte("landing:\n  allowed_lateness: -1m\n"), 0o644))
		var fl runFlags
		cmd := &cobra.Command{Use: "run"}
		addRunFlags(cmd, &fl)
		require.NoError(t, cmd.ParseFlags([]string{"--config", bad}))
		_, err := runConfig(cmd, &fl)
		require.EqualError(t, err, "config "+bad+": landing.allowed_lateness: -1m0s is negative")
	})
}

type runResult struct {
	Warehouse, Listen, State, Embedded string
	Brokers                            []string
}

func TestRequireToken(t *testing.T) {
	h := requireToken("s3cret", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, tc := range []struct {
		header string
		want   int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"s3cret", http.StatusUnauthorized},
		{"Bearer s3cret", http.StatusTeapot},
	} {
		r := httptest.NewRequest(http.MethodGet, "/ui", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, tc.want, w.Code, "Authorization %q", tc.header)
	}
}
