# shellcheck shell=bash
# Sourced by the scripts that drive a background `portrait run`
# (deploy/local/demo-loop.sh, dashboards/ui-shot.sh); the caller defines
# die MESSAGE.
#
#   run_bg CONFIG LOG   start bin/portrait run --config CONFIG, logging to LOG;
#                       wait until it listens and /readyz answers; set
#                       RUN_PID, RUN_LOG, RUN_API (host:port) and RUN_KAFKA
#                       (the embedded broker, read back from the "run:" line).
#   wait_for WHAT SECONDS CMD...   run CMD every 0.2 s until it succeeds; die
#                       if portrait run exits meanwhile or SECONDS pass.
#   stop_pid PID        SIGTERM, up to 10 s to exit, then SIGKILL.
#   stop_run_cleanly    SIGTERM portrait run; die unless it exits with 0.

RUN_PID=""

stop_pid() {
	local pid=$1
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

wait_for() {
	local what=$1 secs=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [[ -n "$RUN_PID" ]] && ! kill -0 "$RUN_PID" 2>/dev/null; then
			tail -20 "$RUN_LOG" >&2
			die "portrait run exited while waiting for ${what} (log: $RUN_LOG)"
		fi
		if ((SECONDS >= deadline)); then
			tail -20 "$RUN_LOG" >&2
			die "gave up waiting ${secs}s for ${what} (log: $RUN_LOG)"
		fi
		sleep 0.2
	done
}

run_bg() {
	RUN_LOG=$2
	bin/portrait config check "$1" >/dev/null || die "config check failed: $1"
	bin/portrait run --config "$1" >"$RUN_LOG" 2>&1 &
	RUN_PID=$!
	wait_for "portrait run to listen" 30 grep -q '^run: http://' "$RUN_LOG"
	RUN_API=$(sed -n 's|^run: http://\([^ ]*\) .*|\1|p' "$RUN_LOG")
	RUN_KAFKA=$(sed -n 's|^run: .*; kafka \([^ ]*\) topic .*|\1|p' "$RUN_LOG")
	[[ -n "$RUN_API" && -n "$RUN_KAFKA" ]] ||
		die "cannot read the API and Kafka addresses from the run: line of $RUN_LOG: $(grep '^run:' "$RUN_LOG")"
	wait_for "/readyz" 30 curl -fsS "http://${RUN_API}/readyz"
}

stop_run_cleanly() {
	local rc=0
	kill -TERM "$RUN_PID"
	wait "$RUN_PID" || rc=$?
	RUN_PID=""
	((rc == 0)) || {
		tail -20 "$RUN_LOG" >&2
		die "portrait run exited with status ${rc} on SIGTERM (log: $RUN_LOG)"
	}
}
