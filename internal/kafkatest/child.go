package kafkatest

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// childEnv marks a test process started by StartChild.
const childEnv = "PORTRAIT_TEST_CHILD"

// StartChild starts this test binary again running only the test named
// (a TestXChild that calls ChildArgs first), with args for it; its stderr
// is the parent's. The caller kills or signals it and waits.
func StartChild(t testing.TB, test string, args map[string]string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+test)
	for k, v := range args {
		cmd.Env = append(cmd.Env, childEnv+"_"+k+"="+v)
	}
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	return cmd
}

// ChildArgs skips the test unless it runs as a child started by
// StartChild, and returns the named args StartChild was given.
func ChildArgs(t testing.TB, names ...string) map[string]string {
	t.Helper()
	if os.Getenv(childEnv) != t.Name() {
		t.Skip("only run as a child process")
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = os.Getenv(childEnv + "_" + n)
	}
	return out
}

// ChildContext is done when the child process gets SIGTERM: a child's
// consumer runs until then, so that the parent can test a graceful stop.
func ChildContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM)
}

// SoakKills is how many times a crash test kills its child: def, or
// PORTRAIT_SOAK_KILLS when set (make soak sets it to run the crash tests
// as a long marathon). Tests scale the events they produce with it so
// that the kills keep landing while events flow.
func SoakKills(t testing.TB, def int) int {
	s := os.Getenv("PORTRAIT_SOAK_KILLS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("PORTRAIT_SOAK_KILLS=%q: want a positive number", s)
	}
	return n
}
