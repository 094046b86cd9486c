#!/usr/bin/env bash
# bessmon against Node-RED with node-red-contrib-modbus, on the same load and
# the same machine. D devices of 20 holding registers, each polled every
# second from `bessmon simulate --load` (a generic register server), one MQTT
# message per poll to a local Mosquitto. Node-RED runs first, then bessmon,
# each alone, each measured over the same window after the same warm-up:
# CPU from /proc (user + system), RSS (at the end, and the peak), polls
# achieved (MQTT messages counted by a subscriber).
#
#   bash scripts/bench-peers.sh [DEVICES ...]     (default: 1000 4000)
#   WINDOW=30 WARMUP=15 bash scripts/bench-peers.sh 1000
#   PEERS=bessmon BESSMON=/path/to/bessmon bash scripts/bench-peers.sh 4000   (one build alone)
#
# Needs node and npm (the npm registry), mosquitto and mosquitto_sub, and a
# release build of bessmon (built if missing). Node-RED is installed with
# install scripts off into target/bench-peers/ (kept for the next run).
# Loopback only; every process it starts is stopped by PID on exit.
set -euo pipefail

NODE_RED_VERSION=4.1.8
MODBUS_VERSION=5.23.3 # the newest whose dependencies install from the npm registry
PEERS=${PEERS:-node-red,bessmon}
WINDOW=${WINDOW:-30}
WARMUP=${WARMUP:-15}
PER_CONNECTION=200 # unit ids per Modbus TCP connection (at most 247)
if [ $# -gt 0 ]; then sizes=("$@"); else sizes=(1000 4000); fi

root=$(cd "$(dirname "$0")/.." && pwd)
# The load server is always this tree's build; the collector may be another
# (BESSMON=path) so two builds can be compared on the same load.
load_bin=$root/target/release/bessmon
[ -x "$load_bin" ] || (cd "$root" && cargo build --release)
bin=${BESSMON:-$load_bin}
nr=$root/target/bench-peers
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # PORT WHAT
  for _ in $(seq 1 300); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "timed out after 30 s waiting for $2 on port $1" >&2
  exit 2
}

if [[ $PEERS == *node-red* ]] && [ ! -x "$nr/node_modules/node-red/red.js" ] || [ ! -d "$nr/node_modules/node-red-contrib-modbus" ]; then
  echo "installing node-red@$NODE_RED_VERSION and node-red-contrib-modbus@$MODBUS_VERSION into $nr" >&2
  mkdir -p "$nr"
  npm install --prefix "$nr" --ignore-scripts --no-audit --no-fund --loglevel=error \
    "node-red@$NODE_RED_VERSION" "node-red-contrib-modbus@$MODBUS_VERSION" >&2
fi

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# Measures PID over the window while COUNT_FILE grows by one line per poll.
# Prints: cpu_percent us_per_poll polls_per_s rss_mb peak_mb
measure() { # PID COUNT_FILE
  sleep "$WARMUP"
  local c0 l0 c1 l1
  c0=$(cpu_ticks "$1"); l0=$(wc -l <"$2")
  sleep "$WINDOW"
  c1=$(cpu_ticks "$1"); l1=$(wc -l <"$2")
  python3 - "$c0" "$c1" "$l0" "$l1" "$ticks" "$WINDOW" "$(kb "$1" VmRSS)" "$(kb "$1" VmHWM)" <<'EOF'
import sys
c0, c1, l0, l1, ticks, window, rss, hwm = map(float, sys.argv[1:])
cpu_s = (c1 - c0) / ticks
polls = l1 - l0
print(f"{100 * cpu_s / window:.1f} {1e6 * cpu_s / max(polls, 1):.0f} {polls / window:.0f} {rss / 1024:.0f} {hwm / 1024:.0f}")
EOF
}

mqtt_port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n' "$mqtt_port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids+=($!)
wait_port "$mqtt_port" mosquitto

results=()
for d in "${sizes[@]}"; do
  conns=$(((d + PER_CONNECTION - 1) / PER_CONNECTION))
  base=$(free_port)
  # Site k of the load server listens on base + k.
  "$load_bin" simulate --load --listen "127.0.0.1:$base" --sites "$conns" >"$work/load-$d.log" 2>&1 &
  load_pid=$!
  pids+=($load_pid)
  for k in $(seq 0 $((conns - 1))); do wait_port $((base + k)) "the load server"; done

  nr_cpu=- nr_us=- nr_polls=- nr_rss=- nr_peak=-
  if [[ $PEERS == *node-red* ]]; then
    # Node-RED: one modbus-client per connection, one modbus-read per device,
    # one shared mqtt out (QoS 0, as such flows are written).
    python3 - "$d" "$PER_CONNECTION" "$base" "$mqtt_port" >"$work/flows-$d.json" <<'EOF'
import json, sys
d, per, base, mqtt = map(int, sys.argv[1:])
nodes = [{"id": "tab", "type": "tab", "label": "load"},
         {"id": "broker", "type": "mqtt-broker", "broker": "127.0.0.1", "port": str(mqtt),
          "clientid": "", "autoConnect": True, "usetls": False, "protocolVersion": "4",
          "keepalive": "60", "cleansession": True},
         {"id": "out", "type": "mqtt out", "z": "tab", "topic": "", "qos": "0",
          "retain": "false", "broker": "broker", "x": 600, "y": 100, "wires": []}]
for k in range((d + per - 1) // per):
    nodes.append({"id": f"client{k}", "type": "modbus-client", "name": f"load{k}",
                  "clienttype": "tcp", "bufferCommands": True, "stateLogEnabled": False,
                  "queueLogEnabled": False, "failureLogEnabled": False,
                  "tcpHost": "127.0.0.1", "tcpPort": str(base + k), "tcpType": "DEFAULT",
                  "serialPort": "", "serialType": "RTU-BUFFERD", "serialBaudrate": "9600",
                  "serialDatabits": "8", "serialStopbits": "1", "serialParity": "none",
                  "serialConnectionDelay": "100", "serialAsciiResponseStartDelimiter": "0x3A",
                  "unit_id": "1", "commandDelay": "1", "clientTimeout": "1000",
                  "reconnectOnTimeout": True, "reconnectTimeout": "2000",
                  "parallelUnitIdsAllowed": True})
for i in range(d):
    k, unit = divmod(i, per)
    nodes.append({"id": f"read{i}", "type": "modbus-read", "z": "tab",
                  "topic": f"nr/dev{i}", "showStatusActivities": False,
                  "logIOActivities": False, "showErrors": False, "showWarnings": False,
                  "unitid": str(unit + 1), "dataType": "HoldingRegister", "adr": "0",
                  "quantity": "20", "rate": "1", "rateUnit": "s", "delayOnStart": False,
                  "startDelayTime": "", "server": f"client{k}", "useIOFile": False,
                  "ioFile": "", "useIOForPayload": False, "emptyMsgOnFail": False,
                  "x": 200, "y": 100 + i, "wires": [["out"], []]})
print(json.dumps(nodes))
EOF
    mkdir -p "$work/nr-user-$d"
    ln -sfn "$nr/node_modules" "$work/nr-user-$d/node_modules"
    mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -t 'nr/#' >"$work/nr-$d.count" &
    sub_pid=$!
    pids+=($sub_pid)
    node "$nr/node_modules/node-red/red.js" --userDir "$work/nr-user-$d" --port "$(free_port)" \
      "$work/flows-$d.json" >"$work/nr-$d.log" 2>&1 &
    nr_pid=$!
    pids+=($nr_pid)
    read -r nr_cpu nr_us nr_polls nr_rss nr_peak < <(measure "$nr_pid" "$work/nr-$d.count")
    kill "$nr_pid" "$sub_pid"
    wait "$nr_pid" 2>/dev/null || true
  fi

  # bessmon: the same devices, a profile of 20 holding registers, every poll
  # through accounting, the durable spool and QoS 1 to the same broker.
  mkdir -p "$work/profiles" "$work/state-$d"
  {
    echo 'id = "bench-20"'
    echo 'source = "scripts/bench-peers.sh"'
    echo 'verified = "device"'
    for a in $(seq 0 19); do
      printf '[[points]]\nname = "r%s"\ntable = "holding"\naddress = %s\ntype = "u16"\n' "$a" "$a"
    done
  } >"$work/profiles/bench-20.toml"
  {
    printf '[daemon]\ninstance = "bench"\nstate_dir = "%s"\nhttp_listen = "127.0.0.1:0"\nprofile_dirs = ["%s"]\ntariff_dirs = []\n' \
      "$work/state-$d" "$work/profiles"
    printf '[mqtt]\nurl = "mqtt://127.0.0.1:%s"\ntopic_prefix = "bm"\nqos = 1\n' "$mqtt_port"
    for k in $(seq 0 $((conns - 1))); do
      printf '[[sites]]\nid = "s%s"\ntariff = "cn-chongqing-ci-2025-02"\ncapacity_kwh = 2000\nrated_power_kw = 1000\npoll_interval = "1s"\n' "$k"
      n=$((d - k * PER_CONNECTION)); [ "$n" -gt "$PER_CONNECTION" ] && n=$PER_CONNECTION
      for u in $(seq 1 "$n"); do
        printf '[[sites.devices]]\nid = "d%s"\nprofile = "bench-20"\nunit = %s\ntimeout = "500ms"\ntransport = { type = "tcp", host = "127.0.0.1", port = %s }\n' \
          "$u" "$u" $((base + k))
      done
    done
  } >"$work/bessmon-$d.toml"
  mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -t 'bm/+/+/state' >"$work/bm-$d.count" &
  sub_pid=$!
  pids+=($sub_pid)
  "$bin" run -c "$work/bessmon-$d.toml" --log-level warn >"$work/bm-$d.log" 2>&1 &
  bm_pid=$!
  pids+=($bm_pid)
  read -r bm_cpu bm_us bm_polls bm_rss bm_peak < <(measure "$bm_pid" "$work/bm-$d.count")
  kill "$bm_pid" "$sub_pid" "$load_pid"
  wait "$bm_pid" 2>/dev/null || true

  ratio() { [ "$1" = - ] && echo - || python3 -c "print(f'{$1 / max($2, 1e-9):.1f}x')"; }
  results+=("| $d | $nr_us us ($nr_cpu %, $nr_polls polls/s) | $bm_us us ($bm_cpu %, $bm_polls polls/s) | $(ratio "$nr_us" "$bm_us") | $nr_rss ($nr_peak) MB | $bm_rss ($bm_peak) MB | $(ratio "$nr_peak" "$bm_peak") |")
done

echo
echo "Node-RED $NODE_RED_VERSION + node-red-contrib-modbus $MODBUS_VERSION against bessmon $("$bin" --version | cut -d' ' -f2), ${WINDOW} s windows after ${WARMUP} s, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| devices | Node-RED CPU per poll (of one core, polls/s) | bessmon CPU per poll | ratio | Node-RED RSS (peak) | bessmon RSS (peak) | peak ratio |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
