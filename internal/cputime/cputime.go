// Package cputime reads how much CPU time a process has used (user plus
// system), for benchmarks that report CPU seconds per million items: this
// process through getrusage, another one through /proc.
package cputime

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Self is this process's user + system CPU time so far (0 if unreadable).
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Process is the user + system CPU time of process pid so far, read from
// /proc/<pid>/stat (0 if unreadable, e.g. the process has exited).
func Process(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	return parseStat(string(raw))
}

// parseStat reads utime and stime (fields 14 and 15, in clock ticks)
// from a /proc/<pid>/stat line. The command name (field 2) may hold
// spaces and parentheses, so the fields are counted from its last ')'.
func parseStat(s string) time.Duration {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat times; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100
