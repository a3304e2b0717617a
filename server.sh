#!/usr/bin/env bash
# Starts, stops and reports the Webots session and simulation servers in the background.
#
#   ./server.sh start|stop|restart|status [CONFIG]
#
# CONFIG (default "default") is either
#   - a name: config/simulation/<CONFIG>.json and config/session/<CONFIG>.json (each server only
#     if its file exists), or
#   - a path to a .json file lying in a folder named "simulation" or "session" (relative to the
#     directory you call from): that file is used for that server, and the file of the same name
#     in the sibling folder (../session/ or ../simulation/), if it exists, for the other one.
#
# The servers run through `deno task simulation|session <config file>` (the tasks hold the
# permission logic), detached from the terminal, simulation server first. The recorded pid is the
# `deno task` process: it forwards SIGTERM to the launcher, which forwards it to the server, which
# stops its Webots instances and exits; `stop` waits for that. Pid files: log/.<server>.pid;
# output (stdout+stderr): log/<server>/server.out (the previous run's is kept as server.out.1).
#
# Environment: SERVER_SH_START_TIMEOUT / SERVER_SH_STOP_TIMEOUT (seconds, default 60 / 30);
# SERVER_SH_LOG_DIR (default log): where the pid files and server.out go (tests use a temp one).
# Deno: `deno` on PATH if it is 2.9.6, else `npx -y deno@2.9.6`.
set -u

DENO_VERSION=2.9.6
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CALLER_DIR=$(pwd -P)
START_TIMEOUT=${SERVER_SH_START_TIMEOUT:-60}
STOP_TIMEOUT=${SERVER_SH_STOP_TIMEOUT:-30}
RUN_DIR=${SERVER_SH_LOG_DIR:-log}
SERVERS_START_ORDER=(simulation session)
SERVERS_STOP_ORDER=(session simulation)

usage() {
  cat <<EOF
Usage: ./server.sh start|stop|restart|status [CONFIG]

  start    start the simulation server, then the session server, in the background
  stop     stop both servers (and their Webots instances), waiting until they are gone
  restart  stop, then start
  status   tell whether each server runs (pid, port); exit 0 only if every configured one runs

CONFIG is a name (config/<server>/<CONFIG>.json, default: default) or the path of a .json file in
a session/ or simulation/ folder. Output goes to log/<server>/server.out.
EOF
}

cd "$HERE" || exit 1

pid_file() { echo "$RUN_DIR/.$1.pid"; }
out_file() { echo "$RUN_DIR/$1/server.out"; }

# The Deno to run: "deno" when it is the pinned version, else the binary npx fetches.
find_deno() {
  if command -v deno >/dev/null 2>&1 &&
    [[ $(deno --version 2>/dev/null | head -n 1) == "deno $DENO_VERSION "* ]]; then
    command -v deno
    return
  fi
  if ! command -v npx >/dev/null 2>&1; then
    echo "Deno $DENO_VERSION is needed: install it (npm install -g deno@$DENO_VERSION) or npx" >&2
    return 1
  fi
  # The real binary, so that the recorded pid is Deno's and not npx's.
  npx -y "deno@$DENO_VERSION" eval 'console.log(Deno.execPath())'
}

# Config file of SERVER for CONFIG, printed if it exists; nothing otherwise.
config_file() {
  local server=$1 config=$2 path dir base
  if [[ $config != *.json ]]; then
    path="config/$server/$config.json"
    [[ -f $path ]] && echo "$HERE/$path"
    return 0
  fi
  [[ $config == /* ]] && path=$config || path="$CALLER_DIR/$config"
  dir=$(basename "$(dirname "$path")")
  base=$(basename "$path")
  case $dir in
    "$server") ;;
    session | simulation) path="$(dirname "$(dirname "$path")")/$server/$base" ;;
    *) return 0 ;;
  esac
  [[ -f $path ]] && echo "$path"
  return 0
}

# Checks that CONFIG names at least one config file, else explains and fails.
check_config() {
  local config=$1
  if [[ $config == *.json ]]; then
    local dir path
    dir=$(basename "$(dirname "$config")")
    if [[ $dir != session && $dir != simulation ]]; then
      echo "Config $config must lie in a folder named session or simulation" >&2
      return 1
    fi
    [[ $config == /* ]] && path=$config || path="$CALLER_DIR/$config"
    if [[ ! -f $path ]]; then
      echo "No config file $config" >&2
      return 1
    fi
    return 0
  fi
  if [[ -z $(config_file simulation "$config") && -z $(config_file session "$config") ]]; then
    echo "No config named $config (config/session/$config.json, config/simulation/$config.json)" >&2
    return 1
  fi
}

# True when PID runs our launcher for SERVER (`deno task SERVER` started here), so a pid reused
# by another program is never signalled.
is_our_server() {
  local server=$1 pid=$2 cmdline cwd
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
  [[ $cwd == "$HERE" ]] || return 1
  [[ "$cmdline" == *" task $server "* || "$cmdline" == *"$server/launch.ts "* ]]
}

# Prints the running pid of SERVER; removes (and reports) a stale pid file. Fails if none runs.
running_pid() {
  local server=$1 file pid
  file=$(pid_file "$server")
  [[ -f $file ]] || return 1
  pid=$(head -n 1 "$file")
  if is_our_server "$server" "$pid"; then
    echo "$pid"
    return 0
  fi
  if [[ -d /proc/$pid && $pid =~ ^[0-9]+$ ]]; then
    echo "Removed stale $file: process $pid is not our $server server ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c 1-80))" >&2
  else
    echo "Removed stale $file: process $pid is gone" >&2
  fi
  rm -f "$file"
  return 1
}

# The port from the server's start line in its output file.
server_port() {
  sed -n -E 's/^.*[Ss](ession|imulation) server running on port ([0-9]+) .*$/\2/p' \
    "$(out_file "$1")" 2>/dev/null | tail -n 1
}

# Waits until PID has exited, up to SECONDS; fails on timeout.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while [[ -d /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.1
  done
}

start_one() {
  local server=$1 config=$2 file out pid deadline
  file=$(config_file "$server" "$config")
  [[ -n $file ]] || return 0
  if pid=$(running_pid "$server"); then
    echo "The $server server is already running ($pid): use restart" >&2
    return 1
  fi
  out=$(out_file "$server")
  mkdir -p "$RUN_DIR/$server"
  [[ -f $out ]] && mv -f "$out" "$out.1"
  # setsid: own session, no controlling terminal, so it survives the shell that started it.
  # Without job control the background child is not a group leader, so setsid does not fork
  # and $! is Deno's pid.
  PATH="$(dirname "$DENO"):$PATH" NO_COLOR=1 \
    setsid "$DENO" task "$server" "$file" >"$out" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$(pid_file "$server")"
  deadline=$((SECONDS + START_TIMEOUT))
  until grep -q "server running on port" "$out" 2>/dev/null; do
    if ! [[ -d /proc/$pid ]] || [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then
      wait "$pid" 2>/dev/null
      rm -f "$(pid_file "$server")"
      echo "Failed to start $config $server server: it exited; last lines of $out:" >&2
      tail -n 15 "$out" | sed 's/^/  /' >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "Failed to start $config $server server: no start line in $out after ${START_TIMEOUT} s" >&2
      kill -TERM "$pid" 2>/dev/null
      wait_gone "$pid" "$STOP_TIMEOUT"
      rm -f "$(pid_file "$server")"
      return 1
    fi
    sleep 0.1
  done
  echo "Started $config $server server ($pid)"
}

stop_one() {
  local server=$1 pid
  pid=$(running_pid "$server") || return 0
  kill -TERM "$pid" 2>/dev/null
  if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
    echo "The $server server ($pid) did not stop within $STOP_TIMEOUT s; see $(out_file "$server")" >&2
    return 1
  fi
  rm -f "$(pid_file "$server")"
  echo "Stopped $server server ($pid)"
}

status_one() {
  local server=$1 config=$2 pid
  if pid=$(running_pid "$server"); then
    echo "The $server server is running (pid $pid, port $(server_port "$server"))"
    return 0
  fi
  if [[ -n $(config_file "$server" "$config") ]]; then
    echo "The $server server is not running"
    return 1
  fi
  echo "The $server server is not running (no $server config for $config)"
  return 0
}

do_start() {
  local config=$1 rc=0 server
  check_config "$config" || return 2
  DENO=$(find_deno) || return 1
  for server in "${SERVERS_START_ORDER[@]}"; do
    start_one "$server" "$config" || rc=1
  done
  return $rc
}

do_stop() {
  local rc=0 server
  for server in "${SERVERS_STOP_ORDER[@]}"; do
    stop_one "$server" || rc=1
  done
  return $rc
}

do_status() {
  local config=$1 rc=0 server
  check_config "$config" || return 2
  for server in "${SERVERS_START_ORDER[@]}"; do
    status_one "$server" "$config" || rc=1
  done
  return $rc
}

main() {
  local command=${1:-} config=${2:-default}
  if (($# > 2)); then
    usage >&2
    return 2
  fi
  case $command in
    start) do_start "$config" ;;
    stop) do_stop ;;
    restart)
      do_stop || return 1
      do_start "$config"
      ;;
    status) do_status "$config" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      return 2
      ;;
  esac
}

main "$@"
