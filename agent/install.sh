#!/bin/sh
# DVIC Demo Monitor: installs (or removes) the node agent as the systemd service dvic-agent.
#
#   curl -fsSL https://<server>/install.sh | sudo sh -s -- --token <token>     (an install link)
#   sudo sh install.sh --config FILE [--agent FILE]                           (what SSH onboarding runs)
#   sudo sh install.sh --uninstall
#
# Options: --token T (exchanged once with the server for this node's identity), --server URL (the
# server's base URL; the copy served at /install.sh has it filled in), --config FILE (an agent
# config the server produced), --agent FILE (the agent file; else downloaded from the server),
# --install-deps (install python3/openssl with apt, dnf, pacman or apk when missing), --no-start
# (install and enable, do not start now), --uninstall (stop and remove everything this installed).
# Running it twice gives the same result. POSIX sh; the agent is pure Python: any CPU works.
set -eu

DVIC_SERVER=""
AGENT_DIR=/opt/dvic-agent
CONFIG_DIR=/etc/dvic-agent
STATE_DIR=/var/lib/dvic-agent
UNIT_PATH=/etc/systemd/system/dvic-agent.service

say() { printf 'dvic install: %s\n' "$*"; }
die() { printf 'dvic install: error: %s\n' "$*" >&2; exit 1; }

token="" config="" agent="" install_deps=0 uninstall=0 start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --token) [ $# -ge 2 ] || die "--token needs a value"; token=$2; shift 2 ;;
    --server) [ $# -ge 2 ] || die "--server needs a value"; DVIC_SERVER=$2; shift 2 ;;
    --config) [ $# -ge 2 ] || die "--config needs a file"; config=$2; shift 2 ;;
    --agent) [ $# -ge 2 ] || die "--agent needs a file"; agent=$2; shift 2 ;;
    --install-deps) install_deps=1; shift ;;
    --no-start) start=0; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" 2>/dev/null || true; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[ "$(uname -s)" = Linux ] || die "only Linux is supported (this is $(uname -s))"
[ "$(id -u)" = 0 ] || die "run it as root (sudo sh install.sh ...)"
[ -d /run/systemd/system ] || die "systemd is not running here (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)): the agent runs as a systemd service"

uninstall_all() {
  systemctl disable --now dvic-agent.service >/dev/null 2>&1 || true
  rm -f "$UNIT_PATH"
  systemctl daemon-reload
  rm -rf "$AGENT_DIR" "$CONFIG_DIR" "$STATE_DIR"
  say "removed the dvic agent (service, $AGENT_DIR, $CONFIG_DIR, $STATE_DIR)"
}

if [ "$uninstall" = 1 ]; then
  uninstall_all
  exit 0
fi

python_ok() { command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; }

install_packages() {
  if command -v apt-get >/dev/null 2>&1; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  elif command -v dnf >/dev/null 2>&1; then dnf install -y "$@"
  elif command -v pacman >/dev/null 2>&1; then pacman -Sy --noconfirm "$@"
  elif command -v apk >/dev/null 2>&1; then apk add --no-cache "$@"
  else die "no apt-get, dnf, pacman or apk here: install $* by hand"
  fi
}

missing=""
python_ok || missing=" python3"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
if [ -n "$missing" ]; then
  [ "$install_deps" = 1 ] || die "missing:$missing (the agent needs python3 >= 3.8 and openssl): install them, or run again with --install-deps"
  say "installing$missing"
  # shellcheck disable=SC2086
  install_packages $missing
  python_ok || die "python3 >= 3.8 is still missing after installing it"
fi
say "Linux $(uname -m), $(python3 -c 'import platform; print("python " + platform.python_version())')"

fetch() {  # fetch URL FILE [POST-BODY]
  if command -v curl >/dev/null 2>&1; then
    if [ $# -ge 3 ]; then curl -fsS -X POST -H 'content-type: application/json' --data-binary "$3" -o "$2" "$1"; else curl -fsS -o "$2" "$1"; fi
  elif command -v wget >/dev/null 2>&1; then
    if [ $# -ge 3 ]; then wget -q --header 'content-type: application/json' --post-data "$3" -O "$2" "$1"; else wget -q -O "$2" "$1"; fi
  else
    die "neither curl nor wget is here to reach $DVIC_SERVER"
  fi
}

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

if [ -n "$token" ]; then
  [ -n "$DVIC_SERVER" ] || die "--token needs the server: --server https://<server>"
  case "$token" in *[!A-Za-z0-9_-]*) die "that is not an install token" ;; esac
  host=$(uname -n | tr -cd 'A-Za-z0-9._-')
  fetch "$DVIC_SERVER/api/v1/enrollment-tokens/exchange" "$work/config.json" "{\"token\":\"$token\",\"hostname\":\"$host\"}" \
    || die "the server refused the token (expired, used up, or unknown): ask for a new install link"
  config="$work/config.json"
fi
if [ -z "$agent" ]; then
  if [ -f "$AGENT_DIR/dvic_agent.py" ] && [ -z "$DVIC_SERVER" ]; then
    agent="$AGENT_DIR/dvic_agent.py"
  else
    [ -n "$DVIC_SERVER" ] || die "no agent file: give --agent FILE or --server URL"
    fetch "$DVIC_SERVER/install/dvic_agent.py" "$work/dvic_agent.py" || die "cannot download the agent from $DVIC_SERVER"
    agent="$work/dvic_agent.py"
  fi
fi
[ -n "$config" ] || [ -f "$CONFIG_DIR/config.json" ] || die "no agent config: give --token T or --config FILE"
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' "$agent" || die "$agent is not a valid agent file"

mkdir -p "$AGENT_DIR" "$CONFIG_DIR" "$STATE_DIR"
chmod 0755 "$AGENT_DIR"
chmod 0700 "$CONFIG_DIR" "$STATE_DIR"
if [ "$agent" != "$AGENT_DIR/dvic_agent.py" ]; then
  # A plain file again (self-update had made it a link into versions/): this install is the known good one.
  cp "$agent" "$AGENT_DIR/dvic_agent.py.new" && chmod 0755 "$AGENT_DIR/dvic_agent.py.new" && mv -f "$AGENT_DIR/dvic_agent.py.new" "$AGENT_DIR/dvic_agent.py"
  rm -f "$AGENT_DIR/trial.json"
fi
# The self-update guard the unit runs first: a copy of a version known to start.
cp "$AGENT_DIR/dvic_agent.py" "$AGENT_DIR/guard.py.new" && chmod 0644 "$AGENT_DIR/guard.py.new" && mv -f "$AGENT_DIR/guard.py.new" "$AGENT_DIR/guard.py"
if [ -n "$config" ]; then
  python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); sys.exit(not ((c.get("server_url") or c.get("server_urls")) and c.get("node_id") and c.get("private_key")))' "$config" \
    || die "$config is not an agent config (server_url or server_urls, node_id, private_key)"
  cp "$config" "$CONFIG_DIR/config.json.new" && chmod 0600 "$CONFIG_DIR/config.json.new" && mv -f "$CONFIG_DIR/config.json.new" "$CONFIG_DIR/config.json"
fi
chown -R root:root "$AGENT_DIR" "$CONFIG_DIR" "$STATE_DIR"

cat > "$UNIT_PATH.new" <<'UNIT'
# DVIC Demo Monitor node agent, written by install.sh (sh install.sh --uninstall removes it).
[Unit]
Description=DVIC Demo Monitor node agent
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
# Self-update: before every start the guard (a copy of the last version that proved healthy)
# restores the previous version when the one on trial exited or crashed before it was healthy.
ExecStartPre=-/usr/bin/env python3 /opt/dvic-agent/guard.py --guard /opt/dvic-agent %n
ExecStart=/usr/bin/env python3 /opt/dvic-agent/dvic_agent.py --config /etc/dvic-agent/config.json
# Comes back after any exit or crash, 3 s later; 75 is the agent's "switched to a new version, restart me".
Restart=always
RestartForceExitStatus=75
RestartSec=3
# Root: the agent reads every process's /proc entry and /proc/*/root/tmp (demo logs inside
# containers), and runs commands and terminals as other users. So no PrivateTmp, ProtectProc,
# ProtectSystem=strict or NoNewPrivileges: each would hide demos or break their commands.
User=root
# Its own files are private (config and key 0600).
UMask=0077
# Commands it started get SIGTERM too on stop, then SIGKILL after the timeout.
KillMode=mixed
TimeoutStopSec=10
# Neither the agent nor its commands need to change the clock or hostname, load kernel modules,
# switch the execution domain or take real-time scheduling.
ProtectClock=yes
ProtectHostname=yes
ProtectKernelModules=yes
LockPersonality=yes
RestrictRealtime=yes
# Log files it follows, terminals and the WebSocket.
LimitNOFILE=8192

[Install]
WantedBy=multi-user.target
UNIT
chmod 0644 "$UNIT_PATH.new"
mv -f "$UNIT_PATH.new" "$UNIT_PATH"
systemctl daemon-reload
systemctl enable dvic-agent.service >/dev/null 2>&1 || die "systemctl enable dvic-agent.service failed"
if [ "$start" = 1 ]; then
  systemctl restart dvic-agent.service || die "dvic-agent.service did not start: journalctl -u dvic-agent"
  say "dvic-agent.service is running"
else
  say "installed; dvic-agent.service is enabled, not started (--no-start)"
fi
