#!/usr/bin/env python3
"""DVIC node agent: one file, Python >= 3.8, standard library only.

Reports what the kernel says about this machine, ships demo and system logs, runs commands
and terminals for the DVIC server, over one WebSocket it dials out to (docs/protocol.md).

    /usr/bin/python3 dvic_agent.py --config /etc/dvic/agent.json
    /usr/bin/python3 dvic_agent.py --print-state
"""

##############################################################################
# Header and version
##############################################################################

from __future__ import annotations

AGENT_VERSION = "0.1.0"
PROTOCOL_VERSION = 1
USER_AGENT = "dvic-agent/" + AGENT_VERSION

##############################################################################
# Imports (ssl, subprocess, pty and ctypes are imported where used: most
# agents never need them, and every module costs resident memory)
##############################################################################

import base64
import glob
import json
import os
import random
import re
import select
import signal
import socket
import struct
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~1.5 MiB at run time; annotations are only read by pyright
    from typing import Any, Callable, Dict, List, Optional, Tuple

try:  # the builtin SHA-1 avoids loading OpenSSL's libcrypto (~4 MiB) just for the handshake
    from _sha1 import sha1
except ImportError:  # pragma: no cover - other Python builds
    from hashlib import sha1

##############################################################################
# Configuration
##############################################################################

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

CONFIG_DEFAULTS = {
    "metrics_interval_s": 5.0,
    "state_dir": "/var/lib/dvic-agent",
    "proc_root": "/proc",
    "sys_root": "/sys",
    "etc_root": "/etc",
    "log_dir": "/tmp",
    "docker_socket": "/var/run/docker.sock",
    "system_logs": "auto",
    "journalctl": "journalctl",
    "syslog_path": "/var/log/syslog",
    "log_batch_max_records": 1000,
    "log_batch_max_delay_ms": 100,
    "terminal_shell": "",
    "tls_ca_file": "",
}
CONFIG_KEYS = set(CONFIG_DEFAULTS) | {"server_url", "node_id", "key_path", "private_key"}


class ConfigError(Exception):
    """A config the agent cannot run with; reported in one line, exit code 2."""


class Config(object):
    """The agent's settings: the config file over the defaults; the server may push some."""

    def __init__(self, values: Dict[str, Any]):
        merged = dict(CONFIG_DEFAULTS)
        merged.update(values)
        self.server_url = str(merged.get("server_url", ""))
        self.node_id = str(merged.get("node_id", ""))
        self.key_path = str(merged.get("key_path", ""))
        self.private_key = str(merged.get("private_key", ""))
        self.metrics_interval_s = float(merged["metrics_interval_s"])
        self.state_dir = str(merged["state_dir"])
        self.proc_root = str(merged["proc_root"])
        self.sys_root = str(merged["sys_root"])
        self.etc_root = str(merged["etc_root"])
        self.log_dir = str(merged["log_dir"])
        self.docker_socket = str(merged["docker_socket"])
        self.system_logs = str(merged["system_logs"])
        self.journalctl = str(merged["journalctl"])
        self.syslog_path = str(merged["syslog_path"])
        self.log_batch_max_records = int(merged["log_batch_max_records"])
        self.log_batch_max_delay_ms = int(merged["log_batch_max_delay_ms"])
        self.terminal_shell = str(merged["terminal_shell"])
        self.tls_ca_file = str(merged["tls_ca_file"])


def load_config(path: str) -> Config:
    """Reads and checks the config file; raises ConfigError with a message naming the file."""
    def fail(problem: str) -> ConfigError:
        return ConfigError("config %s: %s" % (path, problem))

    try:
        with open(path, "rb") as f:
            values = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise fail("no such file")
    except PermissionError:
        raise fail("permission denied")
    except (ValueError, UnicodeDecodeError) as e:
        raise fail("not valid JSON (%s)" % e)
    except OSError as e:
        raise fail(e.strerror or str(e))
    if not isinstance(values, dict):
        raise fail("must be a JSON object")
    for key in ("server_url", "node_id"):
        if not isinstance(values.get(key), str) or not values[key]:
            raise fail('missing "%s"' % key)
    if not re.match(r"^wss?://[^/\s]+", values["server_url"]):
        raise fail('"server_url" must start with ws:// or wss://')
    if not UUID_RE.match(values["node_id"]):
        raise fail('"node_id" is not a UUID')
    if not values.get("key_path") and not values.get("private_key"):
        raise fail('missing "key_path" (or "private_key")')
    for key in sorted(set(values) - CONFIG_KEYS):
        log("WARN", 'config %s: unknown key "%s" ignored' % (path, key))
    try:
        config = Config(values)
    except (TypeError, ValueError) as e:
        raise fail("bad value (%s)" % e)
    if not 0.2 <= config.metrics_interval_s <= 3600:
        raise fail('"metrics_interval_s" must be between 0.2 and 3600')
    if config.key_path:
        try:
            with open(config.key_path) as f:
                config.private_key = f.read()
        except OSError as e:
            raise fail("cannot read key %s: %s" % (config.key_path, e.strerror or e))
    if "PRIVATE KEY-----" not in config.private_key:
        raise fail("the key is not a PEM private key")
    for secret in (path, config.key_path):
        if secret and os.path.exists(secret) and os.stat(secret).st_mode & 0o077:
            log("WARN", "%s is readable by other users: chmod 600 it" % secret)
    return config

##############################################################################
# Utilities
##############################################################################

LOG_LOCK = threading.Lock()


def log(level: str, message: str) -> None:
    """One line per event on stderr (systemd puts it in the journal)."""
    with LOG_LOCK:
        sys.stderr.write("dvic-agent %s %s\n" % (level, message))
        sys.stderr.flush()


def iso_time(ts: Optional[float] = None) -> str:
    """RFC 3339 UTC with milliseconds."""
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % (int(ts * 1000) % 1000)


def read_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def read_optional(path: str, default: str = "") -> str:
    try:
        return read_text(path)
    except OSError:
        return default


def write_atomic(path: str, text: str, mode: int = 0o600) -> None:
    """Replaces a file in one step, so a crash of the agent leaves the old or the new content.

    No fsync: it would stall log shipping for tens of milliseconds, and the state written here
    (acknowledged offsets, cursors) only saves work: after a power cut an older value makes the
    agent send again what the server already has, and the server drops the duplicates."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def readlink(path: str) -> Optional[str]:
    try:
        return os.readlink(path)
    except OSError:
        return None

##############################################################################
# Protocol: embedded schemas, validation, binary frames, signing
##############################################################################

# >>> generated by protocol/scripts/generate.mjs: protocol schemas and constants (do not edit)
PROTOCOL_SCHEMAS = json.loads(r'''[
{"$id":"https://dvic.devinci.fr/protocol/v1/common.json","$defs":{"messageId":{"type":"string","minLength":1,"maxLength":64},"uuid":{"type":"string","pattern":"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},"epochMs":{"type":"integer","minimum":0},"bytes":{"type":"integer","minimum":0},"percent":{"type":"number","minimum":0,"maximum":100},"channel":{"type":"integer","minimum":1,"maximum":4294967295},"shortText":{"type":"string","maxLength":256},"logLevel":{"enum":["TRACE","DEBUG","INFO","WARN","ERROR","FATAL"]},"capability":{"type":"string","pattern":"^[a-z][a-z0-9_.-]{0,63}$"},"hostFacts":{"type":"object","required":["hostname","os","kernel","arch","boot_id","agent_version"],"properties":{"hostname":{"type":"string","minLength":1,"maxLength":255},"os":{"type":"string","maxLength":256},"kernel":{"type":"string","maxLength":256},"arch":{"type":"string","maxLength":64},"boot_id":{"type":"string","maxLength":64},"agent_version":{"type":"string","maxLength":64},"python_version":{"type":"string","maxLength":64},"cpu_model":{"type":"string","maxLength":256},"cpu_count":{"type":"integer","minimum":1},"machine_id":{"type":"string","maxLength":64}}},"logRecord":{"type":"object","required":["ts","level","message"],"properties":{"ts":{"type":"string","maxLength":40},"level":{"$ref":"#/$defs/logLevel"},"message":{"type":"string","maxLength":70000},"offset":{"$ref":"#/$defs/bytes"},"fields":{"type":"object"},"split":{"type":"boolean"},"lost_lines":{"type":"integer","minimum":1}}},"role":{"enum":["viewer","operator","admin"]}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/envelope.json","type":"object","required":["type","data"],"properties":{"type":{"type":"string","pattern":"^[a-z][a-z0-9_.]{0,63}$"},"id":{"$ref":"common.json#/$defs/messageId"},"data":{"type":"object"}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/log-header.json","type":"object","required":["dvic_log","pid"],"properties":{"dvic_log":{"const":1},"token":{"type":"string","pattern":"^[A-Za-z0-9_-]{16,64}$"},"generation":{"type":"integer","minimum":0,"maximum":1000000000},"demo":{"type":"string","minLength":1,"maxLength":128},"pid":{"type":"integer","minimum":1,"maximum":4194304},"start_time":{"type":"integer","minimum":0,"maximum":9007199254740991},"exe":{"type":"string","maxLength":4096},"argv":{"type":"array","maxItems":256,"items":{"type":"string","maxLength":4096}},"user":{"type":"string","maxLength":64},"uid":{"type":"integer","minimum":0,"maximum":4294967294},"hostname":{"type":"string","maxLength":255},"lang":{"type":"string","maxLength":32},"lib_version":{"type":"string","maxLength":64},"started_at":{"type":"string","maxLength":40},"records_before":{"type":"integer","minimum":0,"maximum":9007199254740991}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/agent.status.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"agent.status"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["workers","problems"],"properties":{"workers":{"type":"array","maxItems":32,"items":{"type":"object","required":["name","alive","restarts"],"properties":{"name":{"type":"string","maxLength":64},"alive":{"type":"boolean"},"restarts":{"type":"integer","minimum":0},"last_error":{"type":"string","maxLength":1024}}}},"problems":{"type":"array","maxItems":100,"items":{"type":"object","required":["code","message","count","since"],"properties":{"code":{"type":"string","pattern":"^[a-z][a-z0-9_.]{0,63}$"},"message":{"type":"string","maxLength":1024},"subject":{"type":"string","maxLength":512},"count":{"type":"integer","minimum":1},"since":{"$ref":"../common.json#/$defs/epochMs"},"last":{"$ref":"../common.json#/$defs/epochMs"}}}},"log_files":{"type":"object","properties":{"followed":{"type":"integer","minimum":0},"open":{"type":"integer","minimum":0},"max_open":{"type":"integer","minimum":0},"skipped":{"type":"integer","minimum":0},"buffered_bytes":{"type":"integer","minimum":0},"max_buffered_bytes":{"type":"integer","minimum":0}}},"system_logs":{"type":"object","required":["mode","readable"],"properties":{"mode":{"enum":["journal","syslog","off"]},"readable":{"type":"boolean"},"message":{"type":"string","maxLength":1024}}}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/challenge.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"challenge"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["protocol","nonce","expires_in_ms"],"properties":{"protocol":{"type":"integer","minimum":1},"nonce":{"type":"string","maxLength":128,"minLength":32,"pattern":"^[A-Za-z0-9_-]+$"},"expires_in_ms":{"type":"integer","minimum":1},"server_version":{"type":"string","maxLength":64}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/config.push.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"config.push"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":[],"properties":{"metrics_interval_s":{"type":"number","minimum":0.2,"maximum":3600},"demo_state_interval_s":{"type":"number","minimum":0.2,"maximum":3600},"log_batch_max_records":{"type":"integer","minimum":1,"maximum":10000},"log_batch_max_delay_ms":{"type":"integer","minimum":1,"maximum":60000}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/demo.logs.json","x-direction":"agent-to-server","type":"object","required":["type","id","data"],"properties":{"type":{"const":"demo.logs"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["token","demo","start_offset","end_offset","records"],"properties":{"token":{"type":"string","maxLength":64,"pattern":"^[A-Za-z0-9_-]{16,64}$"},"demo":{"type":"string","maxLength":128},"file_generation":{"type":"integer","minimum":0},"start_offset":{"$ref":"../common.json#/$defs/bytes"},"end_offset":{"$ref":"../common.json#/$defs/bytes"},"records":{"type":"array","maxItems":10000,"items":{"$ref":"../common.json#/$defs/logRecord"}}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/demo.state.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"demo.state"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["full","demos"],"properties":{"full":{"type":"boolean"},"demos":{"type":"array","maxItems":4096,"items":{"type":"object","required":["token","demo","pid","alive"],"properties":{"token":{"type":"string","maxLength":64,"pattern":"^[A-Za-z0-9_-]{16,64}$"},"demo":{"type":"string","maxLength":128},"pid":{"type":"integer","minimum":1},"start_time":{"type":"integer","minimum":0},"user":{"type":"string","maxLength":64},"uid":{"type":"integer","minimum":0},"executable":{"type":"string","maxLength":4096},"argv":{"type":"array","maxItems":256,"items":{"type":"string","maxLength":4096}},"alive":{"type":"boolean"},"started_at":{"type":"string","maxLength":40},"exited_at":{"type":"string","maxLength":40},"container":{"type":"object","required":[],"properties":{"id":{"type":"string","maxLength":128},"name":{"type":"string","maxLength":256},"runtime":{"type":"string","maxLength":32}}},"file_uid":{"type":"integer","minimum":0,"maximum":4294967294},"trusted":{"type":"boolean"}}}}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/deploy.request.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"deploy.request"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["deploy_id","url","sha256","path"],"properties":{"deploy_id":{"type":"string","maxLength":64},"url":{"type":"string","maxLength":2048},"sha256":{"type":"string","maxLength":64,"pattern":"^[0-9a-f]{64}$"},"path":{"type":"string","maxLength":4096},"mode":{"type":"string","maxLength":4,"pattern":"^[0-7]{3,4}$"},"size":{"$ref":"../common.json#/$defs/bytes"}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/deploy.status.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"deploy.status"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["deploy_id","state"],"properties":{"deploy_id":{"type":"string","maxLength":64},"state":{"enum":["downloading","verifying","writing","done","failed"]},"bytes":{"$ref":"../common.json#/$defs/bytes"},"message":{"type":"string","maxLength":1024}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/error.json","x-direction":"both","type":"object","required":["type","data"],"properties":{"type":{"const":"error"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["code","message"],"properties":{"code":{"type":"string","maxLength":64,"pattern":"^[a-z][a-z0-9_]*$"},"message":{"type":"string","maxLength":1024},"ref_type":{"type":"string","maxLength":64}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/exec.cancel.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"exec.cancel"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["command_id"],"properties":{"command_id":{"type":"string","maxLength":64}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/exec.output.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"exec.output"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["command_id","stream","seq","data"],"properties":{"command_id":{"type":"string","maxLength":64},"stream":{"enum":["stdout","stderr"]},"seq":{"type":"integer","minimum":0},"data":{"type":"string","maxLength":1048576}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/exec.request.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"exec.request"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["command_id"],"properties":{"command_id":{"type":"string","maxLength":64,"minLength":1},"argv":{"type":"array","minItems":1,"maxItems":1024,"items":{"type":"string","maxLength":65536}},"command":{"type":"string","maxLength":65536,"minLength":1},"cwd":{"type":"string","maxLength":4096},"env":{"type":"object","additionalProperties":{"type":"string","maxLength":65536}},"user":{"type":"string","maxLength":64},"stdin":{"type":"string","maxLength":1048576},"timeout_s":{"type":"number","exclusiveMinimum":0,"maximum":86400},"max_output_bytes":{"type":"integer","minimum":0}},"oneOf":[{"required":["argv"]},{"required":["command"]}]}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/exec.result.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"exec.result"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["command_id","exit_code","signal","duration_ms"],"properties":{"command_id":{"type":"string","maxLength":64},"exit_code":{"type":["integer","null"]},"signal":{"type":["string","null"],"maxLength":16},"duration_ms":{"type":"number","minimum":0},"timed_out":{"type":"boolean"},"cancelled":{"type":"boolean"},"truncated":{"type":"boolean"},"error":{"type":"string","maxLength":1024}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/hardware.state.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"hardware.state"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["ts","interval_s","host","uptime_s","cpu","load","memory","filesystems","temperatures","processes","network"],"properties":{"ts":{"$ref":"../common.json#/$defs/epochMs"},"interval_s":{"type":"number","exclusiveMinimum":0},"host":{"$ref":"../common.json#/$defs/hostFacts"},"uptime_s":{"type":"number","minimum":0},"cpu":{"type":"object","required":["total_pct","per_core_pct"],"properties":{"total_pct":{"$ref":"../common.json#/$defs/percent"},"per_core_pct":{"type":"array","maxItems":4096,"items":{"$ref":"../common.json#/$defs/percent"}}}},"load":{"type":"object","required":["load1","load5","load15"],"properties":{"load1":{"type":"number","minimum":0},"load5":{"type":"number","minimum":0},"load15":{"type":"number","minimum":0}}},"memory":{"type":"object","required":["total_bytes","available_bytes","used_bytes","swap_total_bytes","swap_used_bytes"],"properties":{"total_bytes":{"$ref":"../common.json#/$defs/bytes"},"available_bytes":{"$ref":"../common.json#/$defs/bytes"},"used_bytes":{"$ref":"../common.json#/$defs/bytes"},"free_bytes":{"$ref":"../common.json#/$defs/bytes"},"buffers_bytes":{"$ref":"../common.json#/$defs/bytes"},"cached_bytes":{"$ref":"../common.json#/$defs/bytes"},"swap_total_bytes":{"$ref":"../common.json#/$defs/bytes"},"swap_used_bytes":{"$ref":"../common.json#/$defs/bytes"}}},"filesystems":{"type":"array","maxItems":256,"items":{"type":"object","required":["mount","fstype","size_bytes","used_bytes","avail_bytes"],"properties":{"mount":{"type":"string","maxLength":4096},"device":{"type":"string","maxLength":4096},"fstype":{"type":"string","maxLength":64},"size_bytes":{"$ref":"../common.json#/$defs/bytes"},"used_bytes":{"$ref":"../common.json#/$defs/bytes"},"avail_bytes":{"$ref":"../common.json#/$defs/bytes"}}}},"temperatures":{"type":"array","maxItems":256,"items":{"type":"object","required":["sensor","source","celsius"],"properties":{"sensor":{"type":"string","maxLength":256},"source":{"enum":["thermal","hwmon"]},"chip":{"type":"string","maxLength":128},"label":{"type":"string","maxLength":128},"celsius":{"type":"number","minimum":-273.15,"maximum":1000}}}},"processes":{"type":"integer","minimum":0},"network":{"type":"array","maxItems":256,"items":{"type":"object","required":["iface","rx_bytes","tx_bytes","rx_bytes_per_s","tx_bytes_per_s"],"properties":{"iface":{"type":"string","maxLength":64},"rx_bytes":{"$ref":"../common.json#/$defs/bytes"},"tx_bytes":{"$ref":"../common.json#/$defs/bytes"},"rx_bytes_per_s":{"type":"number","minimum":0},"tx_bytes_per_s":{"type":"number","minimum":0}}}},"collectors":{"type":"object","additionalProperties":{"type":"object","required":["ok","duration_ms"],"properties":{"ok":{"type":"boolean"},"duration_ms":{"type":"number","minimum":0},"error":{"type":"string","maxLength":512}}}}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/hello.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"hello"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["node_id","nonce","signature","protocol","agent_version","capabilities","host"],"properties":{"node_id":{"$ref":"../common.json#/$defs/uuid"},"nonce":{"type":"string","maxLength":128,"minLength":32,"pattern":"^[A-Za-z0-9_-]+$"},"signature":{"type":"string","maxLength":512,"minLength":16,"pattern":"^[A-Za-z0-9+/]+={0,2}$"},"protocol":{"type":"integer","minimum":1},"agent_version":{"type":"string","maxLength":64,"minLength":1},"capabilities":{"type":"array","maxItems":64,"items":{"$ref":"../common.json#/$defs/capability"}},"host":{"$ref":"../common.json#/$defs/hostFacts"},"max_frame_bytes":{"type":"integer","minimum":65536}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/logs.ack.json","x-direction":"server-to-agent","type":"object","required":["type","id","data"],"properties":{"type":{"const":"logs.ack"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["stored","duplicates"],"properties":{"stored":{"type":"integer","minimum":0},"duplicates":{"type":"integer","minimum":0}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/logs.nack.json","x-direction":"server-to-agent","type":"object","required":["type","id","data"],"properties":{"type":{"const":"logs.nack"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["code","message","retry_after_ms"],"properties":{"code":{"enum":["storage_full","storage_failed","overloaded"]},"message":{"type":"string","maxLength":1024},"retry_after_ms":{"type":"integer","minimum":0,"maximum":3600000}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/system.logs.json","x-direction":"agent-to-server","type":"object","required":["type","id","data"],"properties":{"type":{"const":"system.logs"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["source","records"],"properties":{"source":{"enum":["journal","syslog"]},"stream":{"type":"string","maxLength":256},"cursor":{"type":"string","maxLength":1024},"records":{"type":"array","maxItems":10000,"items":{"type":"object","allOf":[{"$ref":"../common.json#/$defs/logRecord"}],"properties":{"unit":{"type":"string","maxLength":256},"identifier":{"type":"string","maxLength":256},"pid":{"type":"integer","minimum":0}}}}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/terminal.close.json","x-direction":"both","type":"object","required":["type","data"],"properties":{"type":{"const":"terminal.close"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["channel"],"properties":{"channel":{"$ref":"../common.json#/$defs/channel"},"reason":{"type":"string","maxLength":256},"exit_code":{"type":["integer","null"]}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/terminal.open.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"terminal.open"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["channel","cols","rows"],"properties":{"channel":{"$ref":"../common.json#/$defs/channel"},"cols":{"type":"integer","minimum":1,"maximum":1000},"rows":{"type":"integer","minimum":1,"maximum":1000},"user":{"type":"string","maxLength":64},"term":{"type":"string","maxLength":64}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/terminal.opened.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"terminal.opened"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["channel"],"properties":{"channel":{"$ref":"../common.json#/$defs/channel"},"pid":{"type":"integer","minimum":1}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/terminal.resize.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"terminal.resize"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["channel","cols","rows"],"properties":{"channel":{"$ref":"../common.json#/$defs/channel"},"cols":{"type":"integer","minimum":1,"maximum":1000},"rows":{"type":"integer","minimum":1,"maximum":1000}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/tunnel.close.json","x-direction":"both","type":"object","required":["type","data"],"properties":{"type":{"const":"tunnel.close"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["channel"],"properties":{"channel":{"$ref":"../common.json#/$defs/channel"},"reason":{"type":"string","maxLength":256}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/tunnel.open.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"tunnel.open"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["channel","port"],"properties":{"channel":{"$ref":"../common.json#/$defs/channel"},"host":{"type":"string","maxLength":255},"port":{"type":"integer","minimum":1,"maximum":65535}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/tunnel.opened.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"tunnel.opened"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["channel"],"properties":{"channel":{"$ref":"../common.json#/$defs/channel"}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/update.request.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"update.request"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["version","url","sha256"],"properties":{"version":{"type":"string","maxLength":64},"url":{"type":"string","maxLength":2048},"sha256":{"type":"string","maxLength":64,"pattern":"^[0-9a-f]{64}$"},"size":{"$ref":"../common.json#/$defs/bytes"}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/update.status.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"update.status"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["version","state"],"properties":{"version":{"type":"string","maxLength":64},"state":{"enum":["downloading","verifying","installing","restarting","done","failed"]},"progress":{"type":"number","minimum":0,"maximum":1},"message":{"type":"string","maxLength":1024}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/welcome.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"welcome"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["node_id","name","protocol","config"],"properties":{"node_id":{"$ref":"../common.json#/$defs/uuid"},"name":{"type":"string","maxLength":128},"protocol":{"type":"integer","minimum":1},"server_version":{"type":"string","maxLength":64},"capabilities":{"type":"array","maxItems":64,"items":{"$ref":"../common.json#/$defs/capability"}},"config":{"$ref":"config.push.json#/properties/data"},"max_frame_bytes":{"type":"integer","minimum":65536}}}}}
]''')
PROTOCOL_CONSTANTS = json.loads(r'''{"PROTOCOL_VERSION":1,"MAX_FRAME_BYTES":1048576,"TERMINAL_WINDOW_BYTES":262144,"CLOSE_CODES":{"normal":{"code":1000},"goingAway":{"code":1001},"protocolError":{"code":1002},"policyViolation":{"code":1008},"messageTooBig":{"code":1009},"serverError":{"code":1011},"tryAgainLater":{"code":1013},"authFailed":{"code":4001},"authTimeout":{"code":4002},"nodeRevoked":{"code":4003},"unknownNode":{"code":4004},"replayedNonce":{"code":4005},"replaced":{"code":4009},"slowConsumer":{"code":4010},"sessionEnded":{"code":4401},"terminalRefused":{"code":4404}}}''')
# <<< generated

SCHEMA_BASE = "https://dvic.devinci.fr/protocol/v1/"
SCHEMAS_BY_ID = dict((s["$id"], s) for s in PROTOCOL_SCHEMAS)
MESSAGE_SCHEMAS = dict((s["properties"]["type"]["const"], s) for s in PROTOCOL_SCHEMAS if "x-direction" in s)
JSON_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer(),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


class SchemaError(Exception):
    pass


def resolve_ref(ref: str, base: str) -> Tuple[Dict[str, Any], str]:
    """A $ref relative to the schema it appears in -> (target schema, its base id)."""
    file_part, _, pointer = ref.partition("#")
    if file_part:
        target_id = base.rsplit("/", 1)[0] + "/" + file_part
        while "/../" in target_id:
            target_id = re.sub(r"/[^/]+/\.\./", "/", target_id, count=1)
    else:
        target_id = base
    node = SCHEMAS_BY_ID[target_id]
    for part in pointer.split("/")[1:]:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, target_id


def check_schema(value: Any, schema: Dict[str, Any], base: str, path: str = "") -> None:
    """Validates against the subset of JSON Schema the protocol uses; raises SchemaError."""
    where = path or "/"
    if "$ref" in schema:
        target, target_base = resolve_ref(schema["$ref"], base)
        check_schema(value, target, target_base, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(JSON_TYPES[t](value) for t in types):
            raise SchemaError("%s must be %s" % (where, " or ".join(types)))
    if "const" in schema and value != schema["const"]:
        raise SchemaError("%s must be %r" % (where, schema["const"]))
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError("%s must be one of %s" % (where, ", ".join(map(str, schema["enum"]))))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, where)
    if isinstance(value, str):
        _check_string(value, schema, where)
    if isinstance(value, list):
        _check_array(value, schema, base, path)
    if isinstance(value, dict):
        _check_object(value, schema, base, path)
    for sub in schema.get("allOf", []):
        check_schema(value, sub, base, path)
    if "anyOf" in schema and not _matches_count(value, schema["anyOf"], base, path):
        raise SchemaError("%s matches none of the allowed shapes" % where)
    if "oneOf" in schema and _matches_count(value, schema["oneOf"], base, path) != 1:
        raise SchemaError("%s must match exactly one of the allowed shapes" % where)


def _matches_count(value: Any, options: List[Dict[str, Any]], base: str, path: str) -> int:
    count = 0
    for option in options:
        try:
            check_schema(value, option, base, path)
            count += 1
        except SchemaError:
            pass
    return count


def _check_number(value: float, schema: Dict[str, Any], where: str) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        raise SchemaError("%s must be >= %s" % (where, schema["minimum"]))
    if "maximum" in schema and value > schema["maximum"]:
        raise SchemaError("%s must be <= %s" % (where, schema["maximum"]))
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        raise SchemaError("%s must be > %s" % (where, schema["exclusiveMinimum"]))


def _check_string(value: str, schema: Dict[str, Any], where: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise SchemaError("%s is too short" % where)
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise SchemaError("%s is too long" % where)
    if "pattern" in schema and not re.search(schema["pattern"], value):
        raise SchemaError("%s does not match %s" % (where, schema["pattern"]))


def _check_array(value: List[Any], schema: Dict[str, Any], base: str, path: str) -> None:
    if len(value) < schema.get("minItems", 0):
        raise SchemaError("%s has too few items" % (path or "/"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise SchemaError("%s has too many items" % (path or "/"))
    if "items" in schema:
        for i, item in enumerate(value):
            check_schema(item, schema["items"], base, "%s/%d" % (path, i))


def _check_object(value: Dict[str, Any], schema: Dict[str, Any], base: str, path: str) -> None:
    for key in schema.get("required", []):
        if key not in value:
            raise SchemaError("%s must have property %s" % (path or "/", key))
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            check_schema(item, properties[key], base, "%s/%s" % (path, key))
        elif extra is False:
            raise SchemaError("%s/%s is not allowed" % (path, key))
        elif isinstance(extra, dict):
            check_schema(item, extra, base, "%s/%s" % (path, key))


def validate_message(message: Any, direction: Optional[str] = None) -> Optional[str]:
    """None when the message is valid (for this direction), else the problem in one line."""
    try:
        check_schema(message, SCHEMAS_BY_ID[SCHEMA_BASE + "envelope.json"], SCHEMA_BASE + "envelope.json")
    except SchemaError as e:
        return "envelope: %s" % e
    schema = MESSAGE_SCHEMAS.get(message["type"])
    if schema is None or (direction and schema["x-direction"] not in (direction, "both")):
        return "unknown message type %r" % message["type"]
    try:
        check_schema(message, schema, schema["$id"])
    except SchemaError as e:
        return "%s: %s" % (message["type"], e)
    return None


OP_TERMINAL_DATA = 0x01
OP_TUNNEL_DATA = 0x02
OP_CREDIT = 0x03


def encode_binary_frame(opcode: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BI", opcode, channel) + payload


def decode_binary_frame(frame: bytes) -> Optional[Tuple[int, int, bytes]]:
    """(opcode, channel, payload), or None for a frame the protocol refuses."""
    if len(frame) < 5:
        return None
    opcode, channel = struct.unpack(">BI", frame[:5])
    if opcode not in (OP_TERMINAL_DATA, OP_TUNNEL_DATA, OP_CREDIT) or channel == 0:
        return None
    return opcode, channel, frame[5:]


def auth_message(nonce: str, node_id: str) -> bytes:
    return ("dvic-agent-auth:v1:%s:%s" % (nonce, node_id)).encode("utf-8")


ED25519_OID = bytes.fromhex("06032b6570")
EC_OID = bytes.fromhex("06072a8648ce3d0201")


def key_algorithm(pem: str) -> str:
    """'ed25519' or 'ec', read from the key's PKCS#8 algorithm identifier."""
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    if ED25519_OID in der[:32]:
        return "ed25519"
    if EC_OID in der[:40] or "EC PRIVATE KEY" in pem:
        return "ec"
    raise ValueError("unsupported key type (use Ed25519 or ECDSA P-256)")


def sign(private_key_pem: str, message: bytes, state_dir: str = "") -> str:
    """Base64 signature of message, made by the system's openssl or, without it, by python's
    cryptography. openssl first: it runs in its own short-lived process, while importing
    cryptography would keep OpenSSL and Rust bindings (~15 MiB) resident in the agent."""
    algorithm = key_algorithm(private_key_pem)
    if _which("openssl"):
        return base64.b64encode(_openssl_sign(private_key_pem, message, algorithm, state_dir)).decode("ascii")
    try:
        from cryptography.hazmat.primitives import hashes, serialization  # type: ignore
        from cryptography.hazmat.primitives.asymmetric import ec  # type: ignore
    except ImportError:
        raise RuntimeError("cannot sign the handshake: install openssl (or python3-cryptography)")
    key: Any = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    signature = key.sign(message) if algorithm == "ed25519" else key.sign(message, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode("ascii")


def _which(program: str) -> Optional[str]:
    for directory in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) + ["/usr/bin", "/bin"]:
        candidate = os.path.join(directory, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _openssl_sign(private_key_pem: str, message: bytes, algorithm: str, state_dir: str) -> bytes:
    import subprocess
    base = state_dir if state_dir and os.path.isdir(state_dir) else "/tmp"
    # openssl signs Ed25519 only from a file it can size: both files live in a private
    # directory (not tempfile: it imports shutil, bz2 and lzma) and are removed at once.
    tmp = os.path.join(base, ".dvic-sign-%s" % base64.urlsafe_b64encode(os.urandom(9)).decode("ascii"))
    os.mkdir(tmp, 0o700)
    key_file, message_file = os.path.join(tmp, "key.pem"), os.path.join(tmp, "message")
    try:
        for path, content in ((key_file, private_key_pem.encode()), (message_file, message)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, content)
            os.close(fd)
        if algorithm == "ed25519":
            command = ["openssl", "pkeyutl", "-sign", "-inkey", key_file, "-rawin", "-in", message_file]
        else:
            command = ["openssl", "dgst", "-sha256", "-sign", key_file, message_file]
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    finally:
        for path in (key_file, message_file):
            if os.path.exists(path):
                os.unlink(path)
        os.rmdir(tmp)
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError("openssl could not sign: %s" % result.stderr.decode("utf-8", "replace").strip()[:200])
    return result.stdout

##############################################################################
# WebSocket client (RFC 6455)
##############################################################################

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class WebSocketClosed(Exception):
    """The connection ended; code and reason as the peer (or we) gave them."""

    def __init__(self, code: int, reason: str):
        Exception.__init__(self, "closed %d %s" % (code, reason))
        self.code = code
        self.reason = reason


def mask_payload(mask: bytes, payload: bytes) -> bytes:
    """XOR with the 4-byte mask, done on whole integers: fast for large frames in pure Python."""
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes, fin: bool = True, mask: Optional[bytes] = None) -> bytes:
    """A client frame (always masked, as RFC 6455 requires of clients)."""
    mask = os.urandom(4) if mask is None else mask
    head = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head.append(0x80 | n)
    elif n < 65536:
        head.append(0x80 | 126)
        head += struct.pack(">H", n)
    else:
        head.append(0x80 | 127)
        head += struct.pack(">Q", n)
    return bytes(head) + mask + mask_payload(mask, payload)


class WebSocket(object):
    """A blocking WebSocket client: one reader thread calls recv(); any thread may send."""

    def __init__(self, sock: Any, buffered: bytes = b"", max_message: int = MAX_MESSAGE_BYTES):
        self.sock = sock
        self.buffer = bytearray(buffered)
        self.max_message = max_message
        self.send_lock = threading.Lock()
        self.closed = False
        self.close_sent = False
        # A fragmented message being reassembled.
        self.message_opcode: Optional[int] = None
        self.parts: List[bytes] = []
        self.size = 0

    @classmethod
    def connect(cls, url: str, timeout: float = 10.0, ca_file: str = "", max_message: int = MAX_MESSAGE_BYTES) -> "WebSocket":
        match = re.match(r"^(wss?)://(\[[^\]]+\]|[^/:]+)(?::(\d+))?(/[^#]*)?$", url)
        if not match:
            raise ValueError("not a WebSocket URL: %s" % url)
        scheme, host, port, path = match.group(1), match.group(2).strip("[]"), match.group(3), match.group(4) or "/"
        secure = scheme == "wss"
        sock: Any = socket.create_connection((host, int(port or (443 if secure else 80))), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if secure:
                import ssl
                context = ssl.create_default_context(cafile=ca_file or None)
                sock = context.wrap_socket(sock, server_hostname=host)
            key = base64.b64encode(os.urandom(16)).decode("ascii")
            host_header = host if not port else "%s:%s" % (match.group(2), port)
            request = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: %s\r\n\r\n") % (path, host_header, key, USER_AGENT)
            sock.sendall(request.encode("ascii"))
            head, rest = cls._read_response_head(sock)
            cls._check_handshake(head, key)
        except BaseException:
            sock.close()
            raise
        return cls(sock, rest, max_message)

    @staticmethod
    def _read_response_head(sock: Any) -> Tuple[str, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("connection closed during the WebSocket handshake")
            data += chunk
            if len(data) > 16384:
                raise ConnectionError("WebSocket handshake response too large")
        head, _, rest = data.partition(b"\r\n\r\n")
        return head.decode("latin-1"), rest

    @staticmethod
    def _check_handshake(head: str, key: str) -> None:
        lines = head.split("\r\n")
        status = lines[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            raise ConnectionError("server refused the WebSocket upgrade: %s" % lines[0])
        headers = dict((k.strip().lower(), v.strip()) for k, _, v in (l.partition(":") for l in lines[1:]))
        expected = base64.b64encode(sha1((key + WS_GUID).encode("ascii")).digest()).decode("ascii")
        if headers.get("sec-websocket-accept") != expected:
            raise ConnectionError("bad Sec-WebSocket-Accept in the server's handshake")

    # ---- sending

    def send_text(self, text: str) -> None:
        self._send(OP_TEXT, text.encode("utf-8"))

    def send_binary(self, data: bytes) -> None:
        self._send(OP_BINARY, data)

    def send_fragmented(self, opcode: int, payload: bytes, size: int) -> None:
        """One message as several frames (to test peers; the agent never needs it)."""
        with self.send_lock:
            chunks = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
            for i, chunk in enumerate(chunks):
                self.sock.sendall(encode_frame(opcode if i == 0 else OP_CONTINUATION, chunk, fin=i == len(chunks) - 1))

    def ping(self, payload: bytes = b"") -> None:
        self._send(OP_PING, payload)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Starts (or answers) the closing handshake; the socket is shut when the peer answers or fails."""
        if self.close_sent or self.closed:
            return
        self.close_sent = True
        try:
            self._send(OP_CLOSE, struct.pack(">H", code) + reason.encode("utf-8")[:123])
        except OSError:
            self.shutdown()

    def shutdown(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _send(self, opcode: int, payload: bytes) -> None:
        frame = encode_frame(opcode, payload)
        with self.send_lock:
            if self.closed:
                raise ConnectionError("WebSocket is closed")
            self.sock.sendall(frame)

    # ---- receiving

    def recv(self) -> Tuple[int, bytes]:
        """Next whole message: (OP_TEXT or OP_BINARY, payload). Answers pings itself.

        Raises WebSocketClosed when the connection ends, socket.timeout when the socket's
        timeout passes first; a partly received message is kept for the next call."""
        while True:
            fin, opcode, payload = self._read_frame()
            if opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_PONG:
                pass
            elif opcode == OP_CLOSE:
                self._on_close(payload)
            elif opcode in (OP_TEXT, OP_BINARY) and self.message_opcode is None:
                self.message_opcode, self.parts, self.size = opcode, [payload], len(payload)
            elif opcode == OP_CONTINUATION and self.message_opcode is not None:
                self.parts.append(payload)
                self.size += len(payload)
            else:
                self._fail(1002, "unexpected frame opcode %d" % opcode)
            if self.size > self.max_message:
                self._fail(1009, "message too big")
            if self.message_opcode is not None and fin and opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                message = (self.message_opcode, b"".join(self.parts))
                self.message_opcode, self.parts, self.size = None, [], 0
                return message

    def _on_close(self, payload: bytes) -> None:
        code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
        reason = payload[2:].decode("utf-8", "replace")
        if not self.close_sent:
            try:
                self.close(code if code not in (1005, 1006) else 1000, "")
            except OSError:
                pass
        self.shutdown()
        raise WebSocketClosed(code, reason)

    def _fail(self, code: int, reason: str) -> None:
        self.close(code, reason)
        self.shutdown()
        raise WebSocketClosed(code, reason)

    def _read_frame(self) -> Tuple[bool, int, bytes]:
        head = self._peek(2)
        fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
        if head[0] & 0x70:
            self._fail(1002, "reserved bits set")
        masked, length, offset = bool(head[1] & 0x80), head[1] & 0x7F, 2
        if masked:
            self._fail(1002, "server frames must not be masked")
        if length == 126:
            length, offset = struct.unpack(">H", self._peek(4)[2:4])[0], 4
        elif length == 127:
            length, offset = struct.unpack(">Q", self._peek(10)[2:10])[0], 10
        if opcode >= 0x8 and (length > 125 or not fin):
            self._fail(1002, "bad control frame")
        if length > self.max_message:
            self._fail(1009, "message too big")
        frame = self._peek(offset + length)
        del self.buffer[:offset + length]
        return fin, opcode, bytes(frame[offset:])

    def _peek(self, n: int) -> bytearray:
        """The first n buffered bytes, reading from the socket until there are that many."""
        while len(self.buffer) < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            except OSError as e:
                if isinstance(e, socket.timeout):
                    raise
                self.shutdown()
                raise WebSocketClosed(1006, "connection lost: %s" % e)
            if not chunk:
                self.shutdown()
                raise WebSocketClosed(1006, "connection lost")
            self.buffer += chunk
        return self.buffer[:n]

##############################################################################
# /proc and /sys parsers (pure: text in, values out)
##############################################################################

CPU_FIELDS = 8  # user nice system idle iowait irq softirq steal (guest time is already in user)


def parse_stat_cpu(text: str) -> Dict[str, Tuple[int, int]]:
    """/proc/stat -> {"cpu": (busy, total), "cpu0": ...} in clock ticks."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        parts = line.split()
        ticks = [int(x) for x in parts[1:1 + CPU_FIELDS]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        out[parts[0]] = (sum(ticks) - idle, sum(ticks))
    return out


def cpu_percent(before: Tuple[int, int], after: Tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    if total <= 0:
        return 0.0
    return round(max(0.0, min(100.0, 100.0 * busy / total)), 2)


def parse_meminfo(text: str) -> Dict[str, int]:
    """/proc/meminfo -> {"MemTotal": bytes, ...}."""
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            out[key] = int(fields[0]) * (1024 if len(fields) > 1 and fields[1] == "kB" else 1)
    return out


def parse_loadavg(text: str) -> Dict[str, float]:
    one, five, fifteen = text.split()[:3]
    return {"load1": float(one), "load5": float(five), "load15": float(fifteen)}


def parse_uptime(text: str) -> float:
    return float(text.split()[0])


def parse_net_dev(text: str) -> Dict[str, Tuple[int, int]]:
    """/proc/net/dev -> {iface: (rx_bytes, tx_bytes)}, loopback left out."""
    out = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        fields = rest.split()
        if name and name != "lo" and len(fields) >= 9:
            out[name] = (int(fields[0]), int(fields[8]))
    return out


def unescape_mount(field: str) -> str:
    """Mount fields escape space, tab, newline and backslash as octal (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> List[Tuple[str, str, str]]:
    """/proc/self/mounts -> [(device, mount point, fstype)]."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out.append((unescape_mount(parts[0]), unescape_mount(parts[1]), parts[2]))
    return out


def parse_nodev_filesystems(text: str) -> set:
    """/proc/filesystems -> the set of types that need no block device (pseudo filesystems)."""
    return set(line.split()[1] for line in text.splitlines() if line.startswith("nodev") and len(line.split()) > 1)


def real_filesystems(mounts: List[Tuple[str, str, str]], nodev: set) -> List[Tuple[str, str, str]]:
    """Mounts backed by storage, once per device; tmpfs only where demos write logs (/tmp)."""
    seen = set()
    out = []
    for device, mount, fstype in mounts:
        if fstype in nodev and not (fstype == "tmpfs" and mount == "/tmp"):
            continue
        key = device if fstype != "tmpfs" else mount
        if key in seen:
            continue
        seen.add(key)
        out.append((device, mount, fstype))
    return out


def parse_os_release(text: str) -> Dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def parse_cpu_model(cpuinfo: str) -> str:
    """The CPU's name: "model name" on x86, "Model" or "Hardware" on ARM boards."""
    found = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("model name", "Model", "Hardware", "cpu model") and key.strip() not in found:
            found[key.strip()] = value.strip()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if found.get(key):
            return found[key]
    return ""


def parse_millidegrees(text: str) -> float:
    return round(int(text.strip()) / 1000.0, 2)

##############################################################################
# Collectors: each fills part of hardware.state and reports its own duration
##############################################################################


class Sampler(object):
    """Reads the machine under proc_root, sys_root and etc_root; keeps the previous counters
    so CPU percentages and network rates cover the interval between two samples."""

    def __init__(self, proc_root: str = "/proc", sys_root: str = "/sys", etc_root: str = "/etc",
                 statvfs: Callable[[str], Any] = os.statvfs):
        self.proc_root = proc_root
        self.sys_root = sys_root
        self.etc_root = etc_root
        self.statvfs = statvfs
        self.previous_cpu = self._read_cpu()
        self.previous_net = (time.monotonic(), self._read_net())
        self.host_cache: Optional[Dict[str, Any]] = None

    def proc(self, *parts: str) -> str:
        return read_text(os.path.join(self.proc_root, *parts))

    def _read_cpu(self) -> Dict[str, Tuple[int, int]]:
        try:
            return parse_stat_cpu(self.proc("stat"))
        except OSError:
            return {}

    def _read_net(self) -> Dict[str, Tuple[int, int]]:
        try:
            return parse_net_dev(self.proc("net", "dev"))
        except OSError:
            return {}

    # ---- collectors (registered in COLLECTORS below)

    def collect_host(self, state: Dict[str, Any]) -> None:
        if self.host_cache is None:
            release = parse_os_release(read_optional(os.path.join(self.etc_root, "os-release"))
                                       or read_optional(os.path.join(os.path.dirname(self.etc_root), "usr/lib/os-release")))
            uname = os.uname()
            cpus = [k for k in parse_stat_cpu(read_optional(os.path.join(self.proc_root, "stat"))) if k != "cpu"]
            self.host_cache = {
                "hostname": (socket.gethostname() or "unknown")[:255],
                "os": release.get("PRETTY_NAME") or release.get("NAME") or "Linux",
                "kernel": uname.release, "arch": uname.machine,
                "boot_id": read_optional(os.path.join(self.proc_root, "sys/kernel/random/boot_id")).strip(),
                "agent_version": AGENT_VERSION,
                "python_version": "%d.%d.%d" % sys.version_info[:3],
                "cpu_model": parse_cpu_model(read_optional(os.path.join(self.proc_root, "cpuinfo")))[:256],
                "cpu_count": max(1, len(cpus)),
                "machine_id": read_optional(os.path.join(self.etc_root, "machine-id")).strip()[:64],
            }
        state["host"] = dict(self.host_cache)

    def collect_uptime(self, state: Dict[str, Any]) -> None:
        state["uptime_s"] = parse_uptime(self.proc("uptime"))

    def collect_cpu(self, state: Dict[str, Any]) -> None:
        now = parse_stat_cpu(self.proc("stat"))
        before, self.previous_cpu = self.previous_cpu, now
        cores = sorted((k for k in now if k != "cpu"), key=lambda k: int(k[3:]))
        state["cpu"] = {
            "total_pct": cpu_percent(before.get("cpu", now["cpu"]), now["cpu"]),
            "per_core_pct": [cpu_percent(before.get(k, now[k]), now[k]) for k in cores],
        }

    def collect_load(self, state: Dict[str, Any]) -> None:
        state["load"] = parse_loadavg(self.proc("loadavg"))

    def collect_memory(self, state: Dict[str, Any]) -> None:
        m = parse_meminfo(self.proc("meminfo"))
        total = m.get("MemTotal", 0)
        available = m.get("MemAvailable", m.get("MemFree", 0) + m.get("Buffers", 0) + m.get("Cached", 0))
        swap_total = m.get("SwapTotal", 0)
        state["memory"] = {
            "total_bytes": total, "available_bytes": available, "used_bytes": max(0, total - available),
            "free_bytes": m.get("MemFree", 0), "buffers_bytes": m.get("Buffers", 0), "cached_bytes": m.get("Cached", 0),
            "swap_total_bytes": swap_total, "swap_used_bytes": max(0, swap_total - m.get("SwapFree", 0)),
        }

    def collect_filesystems(self, state: Dict[str, Any]) -> None:
        mounts = parse_mounts(self.proc("self", "mounts"))
        nodev = parse_nodev_filesystems(read_optional(os.path.join(self.proc_root, "filesystems")))
        out = []
        for device, mount, fstype in real_filesystems(mounts, nodev):
            try:
                st = self.statvfs(mount)
            except OSError:
                continue
            if st.f_blocks == 0:
                continue
            out.append({
                "mount": mount, "device": device, "fstype": fstype,
                "size_bytes": st.f_blocks * st.f_frsize, "used_bytes": (st.f_blocks - st.f_bfree) * st.f_frsize,
                "avail_bytes": st.f_bavail * st.f_frsize,
            })
        state["filesystems"] = out[:256]

    def collect_temperatures(self, state: Dict[str, Any]) -> None:
        sensors = []
        for zone in sorted(glob.glob(os.path.join(self.sys_root, "class/thermal/thermal_zone*")), key=_natural_key):
            try:
                celsius = parse_millidegrees(read_text(os.path.join(zone, "temp")))
            except (OSError, ValueError):
                continue  # real boards have zones that fail to read (EIO, ENODATA)
            sensors.append({"sensor": os.path.basename(zone), "source": "thermal",
                            "chip": read_optional(os.path.join(zone, "type")).strip()[:128], "celsius": celsius})
        for chip in sorted(glob.glob(os.path.join(self.sys_root, "class/hwmon/hwmon*")), key=_natural_key):
            name = read_optional(os.path.join(chip, "name")).strip()[:128]
            for item in sorted(glob.glob(os.path.join(chip, "temp*_input")), key=_natural_key):
                try:
                    celsius = parse_millidegrees(read_text(item))
                except (OSError, ValueError):
                    continue
                sensor = os.path.basename(item)[:-len("_input")]
                entry = {"sensor": "%s/%s" % (os.path.basename(chip), sensor), "source": "hwmon", "chip": name, "celsius": celsius}
                label = read_optional(os.path.join(chip, sensor + "_label")).strip()
                if label:
                    entry["label"] = label[:128]
                sensors.append(entry)
        state["temperatures"] = [s for s in sensors if -273.15 <= s["celsius"] <= 1000][:256]

    def collect_processes(self, state: Dict[str, Any]) -> None:
        state["processes"] = sum(1 for name in os.listdir(self.proc_root) if name.isdigit())

    def collect_network(self, state: Dict[str, Any]) -> None:
        now, counters = time.monotonic(), parse_net_dev(self.proc("net", "dev"))
        (then, before), self.previous_net = self.previous_net, (now, counters)
        elapsed = max(now - then, 1e-3)
        out = []
        for iface in sorted(counters):
            rx, tx = counters[iface]
            rx0, tx0 = before.get(iface, (rx, tx))
            out.append({"iface": iface[:64], "rx_bytes": rx, "tx_bytes": tx,
                        "rx_bytes_per_s": round(max(0, rx - rx0) / elapsed, 1),
                        "tx_bytes_per_s": round(max(0, tx - tx0) / elapsed, 1)})
        state["network"] = out[:256]

    def sample(self, interval_s: float) -> Dict[str, Any]:
        """One hardware.state payload. A failing collector is reported and the rest still goes out."""
        state: Dict[str, Any] = {"ts": int(time.time() * 1000), "interval_s": interval_s}
        report = {}
        for name, collector in COLLECTORS.items():
            started = time.monotonic()
            try:
                collector(self, state)
                report[name] = {"ok": True}
            except Exception as e:  # a broken /proc file must not stop the other collectors
                report[name] = {"ok": False, "error": ("%s: %s" % (type(e).__name__, e))[:512]}
            report[name]["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
        for key, empty in EMPTY_STATE.items():
            state.setdefault(key, json.loads(json.dumps(empty)))
        state["collectors"] = report
        return state


def _natural_key(path: str) -> List[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


COLLECTORS: Dict[str, Callable[[Sampler, Dict[str, Any]], None]] = {
    "host": Sampler.collect_host,
    "uptime": Sampler.collect_uptime,
    "cpu": Sampler.collect_cpu,
    "load": Sampler.collect_load,
    "memory": Sampler.collect_memory,
    "filesystems": Sampler.collect_filesystems,
    "temperatures": Sampler.collect_temperatures,
    "processes": Sampler.collect_processes,
    "network": Sampler.collect_network,
}

# What a failed collector leaves in place, so the message still matches its schema.
EMPTY_STATE: Dict[str, Any] = {
    "host": {"hostname": "unknown", "os": "", "kernel": "", "arch": "", "boot_id": "", "agent_version": AGENT_VERSION},
    "uptime_s": 0, "cpu": {"total_pct": 0, "per_core_pct": []}, "load": {"load1": 0, "load5": 0, "load15": 0},
    "memory": {"total_bytes": 0, "available_bytes": 0, "used_bytes": 0, "swap_total_bytes": 0, "swap_used_bytes": 0},
    "filesystems": [], "temperatures": [], "processes": 0, "network": [],
}

##############################################################################
# Features: how a capability plugs into the agent
##############################################################################


class Feature(object):
    """A capability of the agent: the messages it handles and what it does around connections."""

    def __init__(self, agent: Agent):
        self.agent = agent

    def capabilities(self) -> List[str]:
        return []

    def handlers(self) -> Dict[str, Callable[[Dict[str, Any]], None]]:
        return {}

    def binary_handlers(self) -> Dict[int, Callable[[int, bytes], None]]:
        return {}

    def workers(self) -> List[Callable[[], None]]:
        """Loops to run in their own threads for the agent's lifetime."""
        return []

    def on_connected(self) -> None:
        pass

    def on_disconnected(self) -> None:
        pass

    def stop(self) -> None:
        pass


# Every feature, in the order they start; each section below appends its own.
FEATURES: List[Callable[[Agent], Feature]] = []

##############################################################################
# Demo log tailer: discovery, liveness, exactly-once shipping (docs/log-format.md)
##############################################################################

LOG_PREFIX = "dvic_log_"
LOG_NAME_RE = re.compile(r"^dvic_log_([A-Za-z0-9_-]{16,64})(\.1)?$")
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL", "ERR": "ERROR"}
MAX_LINE_BYTES = 64 * 1024
READ_CHUNK_BYTES = 256 * 1024
# Batches per file sent and not yet acknowledged: with the batch size, this bounds the memory
# the agent uses whatever the log rate; the rest stays in the file until the server catches up.
MAX_IN_FLIGHT = 4
SCAN_INTERVAL_S = 1.0
LIVENESS_INTERVAL_S = 0.5


def parse_log_line(line: str, now_iso: str) -> Dict[str, Any]:
    """A record line -> {ts, level, message[, fields]}. Never fails: what is not a record is
    kept whole as a raw INFO record, so a print() that bypassed the library still arrives."""
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
    if not isinstance(obj, dict) or not isinstance(obj.get("level"), str):
        return {"ts": now_iso, "level": "INFO", "message": line, "fields": {"raw": True}}
    level = LEVEL_ALIASES.get(obj["level"].upper(), obj["level"].upper())
    message = obj.get("message")
    record: Dict[str, Any] = {
        "ts": obj["ts"] if isinstance(obj.get("ts"), str) else now_iso,
        "level": level if level in LEVELS else "INFO",
        "message": message if isinstance(message, str) else json.dumps(message),
    }
    fields = dict(obj["fields"]) if isinstance(obj.get("fields"), dict) else {}
    if level not in LEVELS:
        fields["level"] = obj["level"]
    if fields:
        record["fields"] = fields
    return record


def split_lines(data: bytes, base: int) -> Tuple[List[Tuple[int, int, bytes, bool]], int]:
    """Complete lines in data read at offset base -> [(start, end, line, split)], bytes used.
    A partial last line is left for later; a line over 64 KiB is cut into marked pieces."""
    lines = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos, pos + MAX_LINE_BYTES + 1)
        if nl == -1:
            if len(data) - pos <= MAX_LINE_BYTES:
                break
            lines.append((base + pos, base + pos + MAX_LINE_BYTES, data[pos:pos + MAX_LINE_BYTES], True))
            pos += MAX_LINE_BYTES
            continue
        lines.append((base + pos, base + nl + 1, data[pos:nl], False))
        pos = nl + 1
    return lines, pos


def parse_log_header(line: bytes) -> Optional[Dict[str, Any]]:
    try:
        header = json.loads(line.decode("utf-8", "replace"))
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("dvic_log") != 1 or not isinstance(header.get("pid"), int):
        return None
    return header


def proc_start_time(stat_text: str) -> int:
    """Field 22 of /proc/<pid>/stat, read after the command name (which may contain spaces)."""
    return int(stat_text[stat_text.rindex(")") + 2:].split()[19])


def container_from_cgroup(text: str) -> Optional[Dict[str, str]]:
    """The container a process runs in, from its /proc/<pid>/cgroup: Docker, Podman, containerd."""
    for pattern, runtime in ((r"docker[-/]([0-9a-f]{64})", "docker"), (r"libpod[-/]([0-9a-f]{64})", "podman"),
                             (r"(?:cri-containerd|containerd)[-:/]([0-9a-f]{64})", "containerd"), (r"crio[-/]([0-9a-f]{64})", "cri-o")):
        match = re.search(pattern, text)
        if match:
            return {"id": match.group(1), "runtime": runtime}
    return None


def docker_container_name(socket_path: str, container_id: str) -> Optional[str]:
    """Asks the Docker API (unix socket) for a container's name; None when there is no Docker."""
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(2)
        client.connect(socket_path)
    except OSError:
        return None
    try:
        client.sendall(("GET /containers/%s/json HTTP/1.0\r\nHost: docker\r\n\r\n" % container_id).encode("ascii"))
        response = b""
        while len(response) < 1024 * 1024:
            chunk = client.recv(65536)
            if not chunk:
                break
            response += chunk
        head, _, body = response.partition(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n")[0]:
            return None
        return str(json.loads(body.decode("utf-8")).get("Name", "")).lstrip("/") or None
    except (OSError, ValueError):
        return None
    finally:
        client.close()


class Scope(object):
    """Where demo logs live: the host, or one mount namespace (a container, an unshare)."""

    def __init__(self, key: str, log_dir: str, proc_dir: str, pid: Optional[int]):
        self.key = key
        self.log_dir = log_dir
        self.proc_dir = proc_dir
        self.pid = pid
        self.container: Optional[Dict[str, str]] = None


class Tail(object):
    """One log file generation being followed."""

    def __init__(self, key: str, scope: Scope, token: str, fd: int, header: Dict[str, Any], header_end: int, offset: int):
        self.key = key
        self.scope = scope
        self.token = token
        self.fd = fd
        self.header = header
        self.generation = int(header.get("generation", 0))
        self.read_offset = max(offset, header_end)
        self.acked_offset = self.read_offset
        self.pending: List[Dict[str, Any]] = []
        self.pending_ends: List[int] = []
        self.pending_since = 0.0
        self.in_flight: List[Tuple[str, int]] = []
        self.acked_ids: set = set()
        self.retry_at = 0.0
        self.listed = True


class DemoLogs(Feature):
    """Finds demo log files on the host and in containers, ships their records exactly once
    (server-side dedup on token, generation and byte offset; offsets persisted after each ack)
    and reports whether each demo process is alive."""

    def __init__(self, agent: Agent):
        Feature.__init__(self, agent)
        config = agent.config
        self.proc_root = config.proc_root
        self.log_dir = config.log_dir
        self.tails: Dict[str, Tail] = {}
        self.lock = threading.Lock()
        self.batch_seq = 0
        self.offsets_path = os.path.join(config.state_dir, "demo-log-offsets.json")
        self.saved: Dict[str, int] = self._load_offsets()
        self.saved_dirty = False
        self.saved_at = 0.0
        self.demos: Dict[str, Dict[str, Any]] = {}
        self.known_scopes: List[Scope] = []
        self.container_names: Dict[str, Optional[str]] = {}
        self.own_mnt = readlink(os.path.join(self.proc_root, "self/ns/mnt"))
        self.inotify = Inotify.create()
        # Acks wake the loop through this pipe: the next batch goes out at once, not after a tick.
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def capabilities(self) -> List[str]:
        return ["demo-logs"]

    def handlers(self) -> Dict[str, Callable[[Dict[str, Any]], None]]:
        return {"logs.ack:logs-": self.on_ack, "logs.nack:logs-": self.on_nack}

    def workers(self) -> List[Callable[[], None]]:
        return [self.run]

    # ---- the loop

    def run(self) -> None:
        next_scan = next_liveness = 0.0
        directory_changed = False
        while not self.agent.stop_event.is_set():
            now = time.monotonic()
            if now >= next_scan:
                self.scan()
                next_scan = now + SCAN_INTERVAL_S
            elif directory_changed:
                self.scan(self.known_scopes)  # a new file: follow it now, not at the next full scan
            if now >= next_liveness:
                self.check_liveness()
                next_liveness = now + LIVENESS_INTERVAL_S
            for _ in range(100):  # ship while there is data and room in flight (bounded)
                self.read_all()
                if not self.flush():
                    break
            self.save_offsets()
            directory_changed = self._wait(self._next_deadline())
        self.save_offsets(force=True)

    def _next_deadline(self) -> float:
        """Seconds until a partial batch is due (at most the batch delay)."""
        delay = self.agent.config.log_batch_max_delay_ms / 1000.0
        now = time.time()
        with self.lock:
            due = [(t.pending_since + delay - now) if t.in_flight else 0.0 for t in self.tails.values() if t.pending and len(t.in_flight) < MAX_IN_FLIGHT]
        return max(0.0, min(due)) if due else delay

    def _wait(self, timeout: float) -> bool:
        """Until a log directory changes (returns True), an ack arrives, or timeout."""
        fds = [self.wake_r] + ([self.inotify.fd] if self.inotify else [])
        ready, _, _ = select.select(fds, [], [], timeout)
        for fd in ready:
            try:
                while os.read(fd, 65536):
                    pass
            except OSError:
                pass
        return bool(self.inotify) and self.inotify.fd in ready

    # ---- discovery

    def scopes(self) -> List[Scope]:
        """The host, plus one scope per mount namespace other than ours (its lowest pid)."""
        found = [Scope("host", self.log_dir, self.proc_root, None)]
        by_mnt: Dict[str, int] = {}
        try:
            pids = sorted(int(p) for p in os.listdir(self.proc_root) if p.isdigit())
        except OSError:
            return found
        for pid in pids:
            mnt = readlink(os.path.join(self.proc_root, str(pid), "ns/mnt"))
            if mnt and mnt != self.own_mnt and mnt not in by_mnt:
                by_mnt[mnt] = pid
        for mnt, pid in by_mnt.items():
            root = os.path.join(self.proc_root, str(pid), "root")
            scope = Scope("mnt:" + mnt[5:-1], os.path.join(root, self.log_dir.lstrip("/")), os.path.join(root, "proc"), pid)
            scope.container = self._container(pid)
            found.append(scope)
        return found

    def _container(self, pid: int) -> Dict[str, str]:
        found = container_from_cgroup(read_optional(os.path.join(self.proc_root, str(pid), "cgroup")))
        if found is None:
            return {"id": readlink(os.path.join(self.proc_root, str(pid), "ns/mnt")) or "", "runtime": "namespace",
                    "name": read_optional(os.path.join(self.proc_root, str(pid), "comm")).strip()}
        if found["runtime"] in ("docker", "podman"):
            if found["id"] not in self.container_names:
                self.container_names[found["id"]] = docker_container_name(self.agent.config.docker_socket, found["id"])
            name = self.container_names[found["id"]]
            if name:
                found["name"] = name
        return found

    def scan(self, scopes: Optional[List[Scope]] = None) -> None:
        """Follows new log files; forgets finished ones. Without scopes, looks for namespaces too."""
        listed = set()
        if scopes is None:
            self.known_scopes = scopes = self.scopes()
        for scope in scopes:
            try:
                names = os.listdir(scope.log_dir)
            except OSError:
                continue
            if self.inotify:
                self.inotify.watch(scope.log_dir)
            for name in names:
                match = LOG_NAME_RE.match(name)
                if match:
                    key = self._follow(scope, match.group(1), os.path.join(scope.log_dir, name))
                    if key:
                        listed.add(key)
        with self.lock:
            for tail in list(self.tails.values()):
                tail.listed = tail.key in listed
                if not tail.listed and not tail.pending and not tail.in_flight and os.fstat(tail.fd).st_size <= tail.read_offset:
                    self._forget(tail)

    def _follow(self, scope: Scope, token: str, path: str) -> Optional[str]:
        """Starts following a file (if new); returns its tail key."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        first = os.pread(fd, MAX_LINE_BYTES, 0)
        end = first.find(b"\n")
        header = parse_log_header(first[:end]) if end >= 0 else None
        if header is None:
            os.close(fd)  # not written yet (looked at again next scan), or not a log file of ours
            return None
        key = "%s/%s/%d" % (scope.key, token, int(header.get("generation", 0)))
        with self.lock:
            if key in self.tails:
                os.close(fd)
                self.tails[key].scope = scope
                return key
            self.tails[key] = Tail(key, scope, token, fd, header, end + 1, self.saved.get(key, 0))
        return key

    def _forget(self, tail: Tail) -> None:
        os.close(tail.fd)
        del self.tails[tail.key]
        if self.saved.pop(tail.key, None) is not None:
            self.saved_dirty = True

    # ---- reading and shipping

    def read_all(self) -> None:
        """Reads every file, oldest generation first. A newer generation waits until the older
        one is read to its end and sent, so the last lines of a rotated file keep their place."""
        now = time.time()
        with self.lock:
            unfinished = set()
            for tail in sorted(self.tails.values(), key=lambda t: t.generation):
                stream = (tail.scope.key, tail.token)
                if stream in unfinished:
                    continue
                if self._read(tail, now) or tail.pending:
                    unfinished.add(stream)

    def _read(self, tail: Tail, now: float) -> bool:
        """Reads complete lines into the pending batch; True while complete lines may be left."""
        limit = self.agent.config.log_batch_max_records
        if len(tail.in_flight) >= MAX_IN_FLIGHT or len(tail.pending) >= limit:
            return True
        try:
            data = os.pread(tail.fd, READ_CHUNK_BYTES, tail.read_offset)
        except OSError:
            return False
        lines, used = split_lines(data, tail.read_offset)
        more = len(data) == READ_CHUNK_BYTES  # a short read reached the end: what is left is a partial line
        if not lines:
            return more
        if not tail.pending:
            tail.pending_since = now
        now_iso = iso_time(now)
        for start, end, raw, split in lines:
            record = parse_log_line(raw.decode("utf-8", "replace"), now_iso)
            record["offset"] = start
            if split:
                record["split"] = True
            tail.pending.append(record)
            tail.pending_ends.append(end)
        tail.read_offset += used
        return more

    def flush(self) -> int:
        """Sends the batches that are full or old enough; returns how many went out."""
        if not self.agent.connected.is_set():
            return 0
        now = time.time()
        config = self.agent.config
        sent = 0
        with self.lock:
            for tail in self.tails.values():
                while tail.pending and len(tail.in_flight) < MAX_IN_FLIGHT and now >= tail.retry_at:
                    # Like Nagle: with nothing in flight a line goes out at once (low latency when
                    # quiet); otherwise lines gather until the batch is full or old enough.
                    full = len(tail.pending) >= config.log_batch_max_records
                    if tail.in_flight and not full and now - tail.pending_since < config.log_batch_max_delay_ms / 1000.0:
                        break
                    if not self._send_batch(tail, config.log_batch_max_records):
                        return sent
                    sent += 1
        return sent

    def _send_batch(self, tail: Tail, size: int) -> bool:
        records, ends = tail.pending[:size], tail.pending_ends[:size]
        self.batch_seq += 1
        batch_id = "logs-%d" % self.batch_seq
        message = {"type": "demo.logs", "id": batch_id, "data": {
            "token": tail.token, "demo": str(tail.header.get("demo") or tail.token)[:128], "file_generation": tail.generation,
            "start_offset": records[0]["offset"], "end_offset": ends[-1], "records": records}}
        if not self.agent.send(message):
            return False
        del tail.pending[:size], tail.pending_ends[:size]
        tail.pending_since = time.time()
        tail.in_flight.append((batch_id, ends[-1]))
        return True

    def on_ack(self, message: Dict[str, Any]) -> None:
        """A batch is stored: the file is acknowledged up to the end of the batches stored in order."""
        with self.lock:
            for tail in self.tails.values():
                ids = [b[0] for b in tail.in_flight]
                if message["id"] not in ids:
                    continue
                tail.acked_ids.add(message["id"])
                while tail.in_flight and tail.in_flight[0][0] in tail.acked_ids:
                    batch_id, end = tail.in_flight.pop(0)
                    tail.acked_ids.discard(batch_id)
                    tail.acked_offset = max(tail.acked_offset, end)
                self.saved[tail.key] = tail.acked_offset
                self.saved_dirty = True
                break
        self._wake()

    def on_nack(self, message: Dict[str, Any]) -> None:
        """A batch was not stored: read again from the last acknowledged offset, after the delay."""
        with self.lock:
            for tail in self.tails.values():
                if message["id"] in [b[0] for b in tail.in_flight]:
                    self._rewind(tail)
                    tail.retry_at = time.time() + message["data"]["retry_after_ms"] / 1000.0
                    break
        log("WARN", "server did not store log batch %s: %s" % (message["id"], message["data"]["message"]))
        self._wake()

    def _rewind(self, tail: Tail) -> None:
        tail.pending, tail.pending_ends, tail.in_flight = [], [], []
        tail.acked_ids = set()
        tail.read_offset = tail.acked_offset

    def _wake(self) -> None:
        try:
            os.write(self.wake_w, b"!")
        except OSError:
            pass  # the pipe is full: the loop is awake anyway

    def on_connected(self) -> None:
        with self.lock:
            self.agent.send({"type": "demo.state", "data": {"full": True, "demos": list(self.demos.values())}})

    def on_disconnected(self) -> None:
        """Batches in flight may be lost: read again from the acknowledged offsets (the server
        drops what it already has)."""
        with self.lock:
            for tail in self.tails.values():
                self._rewind(tail)

    # ---- liveness

    def check_liveness(self) -> None:
        changed = []
        with self.lock:
            current: Dict[str, Tail] = {}
            for tail in self.tails.values():
                newest = current.get(tail.token)
                if newest is None or tail.generation > newest.generation:
                    current[tail.token] = tail
            for token, tail in current.items():
                state = self._demo_state(tail)
                before = self.demos.get(token)
                if before is None or before["alive"] != state["alive"]:
                    if before is not None and not state["alive"]:
                        state["exited_at"] = iso_time()
                    elif before is not None:
                        state.pop("exited_at", None)
                    self.demos[token] = state
                    changed.append(state)
            for token in [t for t in self.demos if t not in current]:
                if self.demos[token]["alive"]:
                    # Its file went away with its container or namespace: the demo went with them.
                    gone = dict(self.demos[token], alive=False, exited_at=iso_time())
                    changed.append(gone)
                del self.demos[token]
            if changed:
                self.agent.send({"type": "demo.state", "data": {"full": False, "demos": changed}})

    def _demo_state(self, tail: Tail) -> Dict[str, Any]:
        header = tail.header
        pid = header["pid"]
        stat = read_optional(os.path.join(tail.scope.proc_dir, str(pid), "stat"))
        alive = bool(stat) and ("start_time" not in header or _safe_start_time(stat) == header["start_time"])
        state: Dict[str, Any] = {"token": tail.token, "demo": str(header.get("demo") or tail.token)[:128], "pid": max(1, pid), "alive": alive}
        for key, out, kind in (("start_time", "start_time", int), ("user", "user", str), ("uid", "uid", int),
                               ("exe", "executable", str), ("started_at", "started_at", str)):
            if isinstance(header.get(key), kind) and not isinstance(header.get(key), bool):
                state[out] = header[key]
        if isinstance(header.get("argv"), list):
            state["argv"] = [str(a)[:4096] for a in header["argv"][:256]]
        if tail.scope.container:
            state["container"] = tail.scope.container
        return state

    # ---- offsets

    def save_offsets(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.saved_dirty or (not force and now - self.saved_at < 1.0):
            return
        with self.lock:
            text = json.dumps(self.saved)
            self.saved_dirty = False
        try:
            write_atomic(self.offsets_path, text)
            self.saved_at = now
        except OSError as e:
            log("WARN", "cannot save log offsets to %s: %s" % (self.offsets_path, e))

    def _load_offsets(self) -> Dict[str, int]:
        try:
            saved = json.loads(read_text(self.offsets_path))
            return dict((str(k), int(v)) for k, v in saved.items()) if isinstance(saved, dict) else {}
        except (OSError, ValueError, AttributeError):
            return {}

    def stop(self) -> None:
        self.save_offsets(force=True)


def _safe_start_time(stat: str) -> Optional[int]:
    try:
        return proc_start_time(stat)
    except (ValueError, IndexError):
        return None


class Inotify(object):
    """inotify through ctypes: wakes the tailer when a watched log directory changes."""

    IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100

    def __init__(self, libc: Any, fd: int):
        self.libc = libc
        self.fd = fd
        self.watched: Dict[str, int] = {}

    @classmethod
    def create(cls) -> Optional["Inotify"]:
        try:
            import ctypes
            # The process's own symbols include libc; ctypes.util.find_library would import
            # subprocess, tempfile, shutil, bz2 and lzma for nothing.
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except (OSError, AttributeError, ImportError):
            return None
        return cls(libc, fd) if fd >= 0 else None

    def watch(self, directory: str) -> None:
        if directory in self.watched:
            return
        mask = self.IN_MODIFY | self.IN_CLOSE_WRITE | self.IN_MOVED_TO | self.IN_CREATE
        wd = self.libc.inotify_add_watch(self.fd, directory.encode(), mask)
        if wd >= 0:
            self.watched[directory] = wd


FEATURES.append(DemoLogs)


##############################################################################
# System logs: the journal (journalctl -o json, persisted cursor) or a syslog file
##############################################################################

SYSTEM_BATCH_RECORDS = 500
SYSTEM_BATCH_DELAY_S = 1.0
JOURNAL_PRIORITY_LEVELS = ("FATAL", "FATAL", "FATAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG")


def journal_record(entry: Dict[str, Any]) -> Dict[str, Any]:
    """One `journalctl -o json` entry -> a log record (with its sequence number as offset)."""
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journald sends non-UTF-8 messages as byte arrays
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    try:
        level = JOURNAL_PRIORITY_LEVELS[int(entry.get("PRIORITY", 6))]
    except (ValueError, IndexError):
        level = "INFO"
    micros = int(entry.get("__REALTIME_TIMESTAMP", 0) or 0)
    record: Dict[str, Any] = {"ts": iso_time(micros / 1e6) if micros else iso_time(), "level": level, "message": str(message)[:65536]}
    for key, out in (("_SYSTEMD_UNIT", "unit"), ("SYSLOG_IDENTIFIER", "identifier")):
        if isinstance(entry.get(key), str):
            record[out] = entry[key][:256]
    if str(entry.get("_PID", "")).isdigit():
        record["pid"] = int(entry["_PID"])
    if str(entry.get("__SEQNUM", "")).isdigit():
        record["offset"] = int(entry["__SEQNUM"])
    return record


class SystemLogs(Feature):
    """Ships the machine's own logs as source "system": one batch in flight, its cursor saved
    only once the server acknowledged it, so a restart resumes exactly where it stopped."""

    def __init__(self, agent: Agent):
        Feature.__init__(self, agent)
        config = agent.config
        self.mode = self._choose_mode(config)
        self.cursor_path = os.path.join(config.state_dir, "system-log-cursor.json")
        self.cursor = self._load_cursor()
        self.in_flight: Optional[Dict[str, Any]] = None
        self.acked = threading.Event()
        self.connection_lost = False
        self.retry_after = 0.0
        self.seq = 0

    @staticmethod
    def _choose_mode(config: Config) -> str:
        if config.system_logs != "auto":
            return config.system_logs
        if _which(config.journalctl) and (os.path.exists("/run/systemd/journal/socket") or os.path.isdir("/var/log/journal")):
            return "journal"
        return "syslog" if os.path.exists(config.syslog_path) else "off"

    def capabilities(self) -> List[str]:
        return ["system-logs"] if self.mode in ("journal", "syslog") else []

    def handlers(self) -> Dict[str, Callable[[Dict[str, Any]], None]]:
        return {"logs.ack:sys-": self.on_ack, "logs.nack:sys-": self.on_nack}

    def workers(self) -> List[Callable[[], None]]:
        return {"journal": [self.run_journal], "syslog": [self.run_syslog]}.get(self.mode, [])

    # ---- shipping, shared by both sources

    def ship(self, records: List[Dict[str, Any]], cursor: str, stream: Optional[str]) -> bool:
        """Sends one batch and waits for its ack (resending after a reconnection); False when stopping."""
        self.seq += 1
        data: Dict[str, Any] = {"source": "journal" if self.mode == "journal" else "syslog", "cursor": cursor, "records": records}
        if stream:
            data["stream"] = stream
        self.in_flight = {"type": "system.logs", "id": "sys-%d" % self.seq, "data": data}
        while not self.agent.stop_event.is_set():
            self.acked.clear()
            self.connection_lost = False
            if self.retry_after:
                self.agent.stop_event.wait(self.retry_after)
                self.retry_after = 0.0
            if not (self.agent.connected.wait(1.0) and self.agent.send(self.in_flight)):
                continue
            deadline = time.monotonic() + 30.0
            # Until the ack, the connection drops (send again once back) or 30 s pass.
            while not self.acked.wait(0.2) and not self.connection_lost and time.monotonic() < deadline:
                if self.agent.stop_event.is_set():
                    return False
            if self.acked.is_set():
                self.cursor = cursor
                self._save_cursor()
                return True
        return False

    def on_ack(self, message: Dict[str, Any]) -> None:
        if self.in_flight is not None and message.get("id") == self.in_flight["id"]:
            self.acked.set()

    def on_nack(self, message: Dict[str, Any]) -> None:
        if self.in_flight is not None and message.get("id") == self.in_flight["id"]:
            self.retry_after = message["data"]["retry_after_ms"] / 1000.0
            self.connection_lost = True  # not stored: send it again (after the delay)

    def on_disconnected(self) -> None:
        self.connection_lost = True

    # ---- the journal

    def run_journal(self) -> None:
        import subprocess
        args = [self.agent.config.journalctl, "-o", "json", "--follow", "--no-pager", "--no-tail"]
        args += ["--after-cursor", self.cursor] if self.cursor else ["--lines", "0"]
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        batch: List[Dict[str, Any]] = []
        cursor, stream, started = self.cursor, None, time.monotonic()
        fd = process.stdout.fileno()
        buffered = b""
        try:
            while not self.agent.stop_event.is_set():
                ready, _, _ = select.select([fd], [], [], 0.5)
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    buffered += chunk
                    lines = buffered.split(b"\n")
                    buffered = lines.pop()
                    for line in lines:
                        try:
                            entry = json.loads(line.decode("utf-8", "replace"))
                        except ValueError:
                            continue
                        entry_stream = "journal:%s" % entry.get("__SEQNUM_ID", "")
                        if batch and entry_stream != stream:  # one offset space per batch
                            if not self.ship(batch, cursor, stream):
                                return
                            batch, started = [], time.monotonic()
                        stream = entry_stream
                        batch.append(journal_record(entry))
                        cursor = str(entry.get("__CURSOR", cursor))
                if batch and (len(batch) >= SYSTEM_BATCH_RECORDS or time.monotonic() - started >= SYSTEM_BATCH_DELAY_S):
                    if not self.ship(batch, cursor, stream):
                        return
                    batch, started = [], time.monotonic()
                elif not batch:
                    started = time.monotonic()
        finally:
            process.kill()
            process.wait()
            process.stdout.close()

    # ---- a syslog file

    def run_syslog(self) -> None:
        path = self.agent.config.syslog_path
        inode, offset = _parse_file_cursor(self.cursor)
        while not self.agent.stop_event.is_set():
            try:
                st = os.stat(path)
            except OSError:
                self.agent.stop_event.wait(SYSTEM_BATCH_DELAY_S)
                continue
            if st.st_ino != inode or st.st_size < offset:  # a new or truncated file: start at its beginning
                inode, offset = st.st_ino, 0
            batch, offset_after = self._read_syslog(path, offset)
            if batch:
                if not self.ship(batch, "%d:%d" % (inode, offset_after), "syslog:%d" % inode):
                    return
                offset = offset_after
            else:
                self.agent.stop_event.wait(SYSTEM_BATCH_DELAY_S)

    def _read_syslog(self, path: str, offset: int) -> Tuple[List[Dict[str, Any]], int]:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(READ_CHUNK_BYTES)
        except OSError:
            return [], offset
        lines, used = split_lines(data, offset)
        now = iso_time()
        records = [{"ts": now, "level": "INFO", "message": raw.decode("utf-8", "replace"), "offset": start}
                   for start, _end, raw, _split in lines[:SYSTEM_BATCH_RECORDS]]
        if len(lines) > SYSTEM_BATCH_RECORDS:
            used = lines[SYSTEM_BATCH_RECORDS][0] - offset
        return records, offset + used

    # ---- cursor

    def _load_cursor(self) -> str:
        try:
            return str(json.loads(read_text(self.cursor_path)).get("cursor", ""))
        except (OSError, ValueError, AttributeError):
            return ""

    def _save_cursor(self) -> None:
        try:
            write_atomic(self.cursor_path, json.dumps({"mode": self.mode, "cursor": self.cursor}))
        except OSError as e:
            log("WARN", "cannot save the system log cursor: %s" % e)


def _parse_file_cursor(cursor: str) -> Tuple[int, int]:
    inode, _, offset = cursor.partition(":")
    return (int(inode), int(offset)) if inode.isdigit() and offset.isdigit() else (0, 0)


FEATURES.append(SystemLogs)

##############################################################################
# Exec: commands with streamed output, in their own process group
##############################################################################

EXEC_CHUNK_BYTES = 64 * 1024
EXEC_DEFAULT_MAX_OUTPUT = 1024 * 1024
KILL_GRACE_S = 2.0


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "SIG%d" % number


def _switch_user(name: str) -> Callable[[], None]:
    """preexec_fn running a command as another user (Python 3.8 has no user= in Popen)."""
    import pwd
    entry = pwd.getpwnam(name)

    def switch() -> None:
        os.initgroups(entry.pw_name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    return switch


class RunningCommand(object):
    def __init__(self, command_id: str):
        self.command_id = command_id
        self.process: Any = None
        self.cancelled = threading.Event()


class Commands(Feature):
    """Runs exec.request commands. Output streams back in chunks as it comes, up to a cap (the
    rest is drained and dropped); a timeout or a cancel kills the whole process group."""

    def __init__(self, agent: Agent):
        Feature.__init__(self, agent)
        self.running: Dict[str, RunningCommand] = {}
        self.lock = threading.Lock()

    def capabilities(self) -> List[str]:
        return ["exec"]

    def handlers(self) -> Dict[str, Callable[[Dict[str, Any]], None]]:
        return {"exec.request": self.on_request, "exec.cancel": self.on_cancel}

    def on_request(self, message: Dict[str, Any]) -> None:
        data = message["data"]
        command = RunningCommand(data["command_id"])
        with self.lock:
            if command.command_id in self.running:
                return  # a duplicate request: the first one reports
            self.running[command.command_id] = command
        threading.Thread(target=self._run, args=(command, data), name="exec", daemon=True).start()

    def on_cancel(self, message: Dict[str, Any]) -> None:
        with self.lock:
            command = self.running.get(message["data"]["command_id"])
        if command:
            command.cancelled.set()

    def on_disconnected(self) -> None:
        """Nobody can receive the results any more: stop everything still running."""
        self.stop()

    def stop(self) -> None:
        with self.lock:
            for command in self.running.values():
                command.cancelled.set()

    def _run(self, command: RunningCommand, data: Dict[str, Any]) -> None:
        started = time.monotonic()
        result: Dict[str, Any] = {"command_id": command.command_id, "exit_code": None, "signal": None}
        try:
            result.update(self._execute(command, data, started))
        except Exception as e:  # could not start it: bad cwd, unknown user, missing program
            result["error"] = ("%s: %s" % (type(e).__name__, e))[:1024]
        finally:
            with self.lock:
                self.running.pop(command.command_id, None)
        result["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        self.agent.send({"type": "exec.result", "data": result})

    def _execute(self, command: RunningCommand, data: Dict[str, Any], started: float) -> Dict[str, Any]:
        import subprocess
        argv = data.get("argv") or ["/bin/sh", "-c", data["command"]]
        env = dict(os.environ)
        env.update(data.get("env") or {})
        stdin = data.get("stdin")
        process = subprocess.Popen(
            argv, cwd=data.get("cwd") or None, env=env, start_new_session=True,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=_switch_user(data["user"]) if data.get("user") else None)
        command.process = process
        if stdin is not None:
            threading.Thread(target=_feed_stdin, args=(process.stdin, stdin.encode("utf-8")), daemon=True).start()
        deadline = started + float(data.get("timeout_s", 60))
        limit = int(data.get("max_output_bytes", EXEC_DEFAULT_MAX_OUTPUT))
        outcome = self._pump(command, process, deadline, limit)
        code = process.wait()
        outcome.update({"exit_code": code if code >= 0 else None, "signal": signal_name(-code) if code < 0 else None})
        return outcome

    def _pump(self, command: RunningCommand, process: Any, deadline: float, limit: int) -> Dict[str, Any]:
        """Streams stdout/stderr until both close; kills the group on timeout or cancel."""
        streams = {process.stdout.fileno(): "stdout", process.stderr.fileno(): "stderr"}
        decoders = dict((fd, codecs_incremental()) for fd in streams)
        sent = seq = 0
        outcome = {"timed_out": False, "cancelled": False, "truncated": False}
        killed_at = None
        while streams:
            now = time.monotonic()
            if killed_at is None and (now >= deadline or command.cancelled.is_set()):
                outcome["timed_out" if now >= deadline else "cancelled"] = True
                killed_at = now
                _kill_group(process.pid, signal.SIGTERM)
            if killed_at is not None and now - killed_at > KILL_GRACE_S:
                _kill_group(process.pid, signal.SIGKILL)
            ready, _, _ = select.select(list(streams), [], [], 0.1)
            for fd in ready:
                chunk = os.read(fd, EXEC_CHUNK_BYTES)
                if not chunk:
                    del streams[fd]
                    continue
                if len(chunk) > limit - sent:  # past the cap: keep draining so the command is not blocked
                    chunk = chunk[:max(0, limit - sent)]
                    outcome["truncated"] = True
                if not chunk:
                    continue
                text = decoders[fd].decode(chunk)
                sent += len(chunk)
                if text:
                    self.agent.send({"type": "exec.output", "data": {"command_id": command.command_id, "stream": streams[fd], "seq": seq, "data": text}})
                    seq += 1
        if killed_at is not None:
            _kill_group(process.pid, signal.SIGKILL)  # grandchildren that ignored SIGTERM
        return outcome


def codecs_incremental() -> Any:
    """A UTF-8 decoder that keeps a character split across two reads whole."""
    import codecs
    return codecs.getincrementaldecoder("utf-8")("replace")


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


def _feed_stdin(pipe: Any, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except OSError:
        pass


FEATURES.append(Commands)

##############################################################################
# PTY terminals (bytes in binary frames, credit-based flow control)
##############################################################################

TERMINAL_WINDOW_BYTES = 256 * 1024
TERMINAL_READ_BYTES = 16 * 1024


class TerminalSession(object):
    def __init__(self, channel: int, pid: int, fd: int):
        self.channel = channel
        self.pid = pid
        self.fd = fd
        self.credit = TERMINAL_WINDOW_BYTES
        self.credit_changed = threading.Condition()
        self.closed = False


class Terminals(Feature):
    """Login shells on PTYs. The agent sends output only while the viewer has credit, so a
    program printing without end never fills the agent's, the server's or the browser's memory."""

    def __init__(self, agent: Agent):
        Feature.__init__(self, agent)
        self.sessions: Dict[int, TerminalSession] = {}
        self.lock = threading.Lock()

    def capabilities(self) -> List[str]:
        return ["terminal"]

    def handlers(self) -> Dict[str, Callable[[Dict[str, Any]], None]]:
        return {"terminal.open": self.on_open, "terminal.resize": self.on_resize, "terminal.close": self.on_close}

    def binary_handlers(self) -> Dict[int, Callable[[int, bytes], None]]:
        return {OP_TERMINAL_DATA: self.on_input, OP_CREDIT: self.on_credit}

    def on_open(self, message: Dict[str, Any]) -> None:
        import pty
        data = message["data"]
        channel = data["channel"]
        argv, env = self._shell(data.get("user"), data.get("term") or "xterm-256color")
        pid, fd = pty.fork()
        if pid == 0:  # the child: only exec, everything was prepared before the fork
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        session = TerminalSession(channel, pid, fd)
        _set_window_size(fd, data["cols"], data["rows"])
        with self.lock:
            self.sessions[channel] = session
        self.agent.send({"type": "terminal.opened", "data": {"channel": channel, "pid": pid}})
        threading.Thread(target=self._pump, args=(session,), name="terminal", daemon=True).start()

    def _shell(self, user: Optional[str], term: str) -> Tuple[List[str], Dict[str, str]]:
        import pwd
        me = pwd.getpwuid(os.getuid())
        env = {"TERM": term, "LANG": os.environ.get("LANG", "C.UTF-8"), "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
        if user and user != me.pw_name:
            if os.getuid() != 0:
                raise PermissionError("the agent does not run as root: it cannot open a shell as %s" % user)
            pwd.getpwnam(user)  # fails clearly for an unknown user
            return ["/bin/su", "-", user], env
        shell = self.agent.config.terminal_shell or me.pw_shell or "/bin/sh"
        env.update({"HOME": me.pw_dir, "USER": me.pw_name, "LOGNAME": me.pw_name, "SHELL": shell})
        return [shell, "-l"], env

    def on_input(self, channel: int, payload: bytes) -> None:
        session = self.sessions.get(channel)
        if session is None or session.closed:
            return
        view = memoryview(payload)
        while view:
            try:
                written = os.write(session.fd, view)
            except OSError:
                return
            view = view[written:]

    def on_credit(self, channel: int, payload: bytes) -> None:
        session = self.sessions.get(channel)
        if session is None or len(payload) != 4:
            return
        with session.credit_changed:
            session.credit = min(TERMINAL_WINDOW_BYTES, session.credit + struct.unpack(">I", payload)[0])
            session.credit_changed.notify()

    def on_resize(self, message: Dict[str, Any]) -> None:
        session = self.sessions.get(message["data"]["channel"])
        if session:
            _set_window_size(session.fd, message["data"]["cols"], message["data"]["rows"])

    def on_close(self, message: Dict[str, Any]) -> None:
        session = self.sessions.get(message["data"]["channel"])
        if session:
            self._end(session)

    def on_disconnected(self) -> None:
        self.stop()

    def stop(self) -> None:
        for session in list(self.sessions.values()):
            self._end(session)

    def _pump(self, session: TerminalSession) -> None:
        while not session.closed:
            with session.credit_changed:
                while session.credit <= 0 and not session.closed:
                    session.credit_changed.wait(0.5)
                budget = session.credit
            if session.closed:
                break
            ready, _, _ = select.select([session.fd], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(session.fd, min(budget, TERMINAL_READ_BYTES))
            except OSError:  # EIO: the shell and everything on its terminal exited
                data = b""
            if not data:
                break
            with session.credit_changed:
                session.credit -= len(data)
            self.agent.send_binary(encode_binary_frame(OP_TERMINAL_DATA, session.channel, data))
        exit_code = self._reap(session)
        if not session.closed:
            self._end(session)
            self.agent.send({"type": "terminal.close", "data": {"channel": session.channel, "exit_code": exit_code, "reason": "the shell exited"}})

    def _reap(self, session: TerminalSession) -> Optional[int]:
        for _ in range(50):
            try:
                pid, status = os.waitpid(session.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid:
                return os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            time.sleep(0.02)
        return None

    def _end(self, session: TerminalSession) -> None:
        with self.lock:
            if session.closed:
                return
            session.closed = True
            self.sessions.pop(session.channel, None)
        with session.credit_changed:
            session.credit_changed.notify()
        _kill_group(session.pid, signal.SIGHUP)
        threading.Timer(1.0, _kill_group, args=(session.pid, signal.SIGKILL)).start()
        try:
            os.close(session.fd)
        except OSError:
            pass


def _set_window_size(fd: int, cols: int, rows: int) -> None:
    import fcntl
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


FEATURES.append(Terminals)

##############################################################################
# Connection: handshake, dispatch, reconnect
##############################################################################

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
DEAD_LINK_S = 45.0  # the server pings every 15 s: three silent periods mean the link is gone
REFUSED_FOR_GOOD = {4003: "node revoked", 4004: "unknown node"}


def backoff_delay(attempt: int, cap: float = BACKOFF_CAP_S) -> float:
    """Exponential backoff with full jitter: spreads a lab's reconnections after a server restart."""
    return random.uniform(0, min(cap, BACKOFF_BASE_S * (2 ** min(attempt, 16))))


class Agent(object):
    """Keeps one connection to the server and hands messages to the features."""

    def __init__(self, config: Config):
        self.config = config
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self.wake_metrics = threading.Event()
        self.ws: Optional[WebSocket] = None
        self.sampler = Sampler(config.proc_root, config.sys_root, config.etc_root)
        self.features = [factory(self) for factory in FEATURES]
        self.handlers: Dict[str, Callable[[Dict[str, Any]], None]] = {
            "config.push": lambda m: self.apply_config(m["data"]),
            "error": lambda m: log("WARN", "server reported %s: %s" % (m["data"]["code"], m["data"]["message"])),
        }
        for feature in self.features:
            self.handlers.update(feature.handlers())
        self.binary_handlers: Dict[int, Callable[[int, bytes], None]] = {}
        for feature in self.features:
            self.binary_handlers.update(feature.binary_handlers())

    @property
    def capabilities(self) -> List[str]:
        caps = ["hardware"]
        for feature in self.features:
            caps.extend(feature.capabilities())
        return caps

    # ---- sending (any thread)

    def send(self, message: Dict[str, Any]) -> bool:
        """Sends a message; False when there is no connection (callers keep their data)."""
        ws = self.ws
        if ws is None or not self.connected.is_set():
            return False
        try:
            ws.send_text(json.dumps(message, separators=(",", ":"), ensure_ascii=False))
            return True
        except (OSError, ConnectionError):
            return False

    def send_binary(self, frame: bytes) -> bool:
        ws = self.ws
        if ws is None or not self.connected.is_set():
            return False
        try:
            ws.send_binary(frame)
            return True
        except (OSError, ConnectionError):
            return False

    def apply_config(self, settings: Dict[str, Any]) -> None:
        for key in ("metrics_interval_s", "log_batch_max_records", "log_batch_max_delay_ms"):
            if key in settings:
                setattr(self.config, key, type(getattr(self.config, key))(settings[key]))
        self.wake_metrics.set()

    # ---- the main loop

    def run(self) -> int:
        for target in [self._metrics_loop] + [w for f in self.features for w in f.workers()]:
            threading.Thread(target=target, name=getattr(target, "__name__", "worker"), daemon=True).start()
        attempt = 0
        while not self.stop_event.is_set():
            delay = None
            try:
                self._connect_and_serve()
                attempt = 0
            except WebSocketClosed as e:
                if e.code in REFUSED_FOR_GOOD or 4000 <= e.code < 4009:
                    log("ERROR", "server refused this node: %d %s" % (e.code, e.reason))
                    delay = random.uniform(BACKOFF_CAP_S / 2, BACKOFF_CAP_S) if e.code in REFUSED_FOR_GOOD else None
                elif not self.stop_event.is_set():
                    log("WARN", "connection closed: %d %s" % (e.code, e.reason))
            except (OSError, ConnectionError, ValueError, RuntimeError) as e:
                log("WARN", "cannot reach %s: %s" % (self.config.server_url, e))
            finally:
                self._disconnected()
            if self.stop_event.is_set():
                break
            delay = backoff_delay(attempt) if delay is None else delay
            attempt += 1
            log("INFO", "reconnecting in %.1f s" % delay)
            self.stop_event.wait(delay)
        for feature in self.features:
            feature.stop()
        log("INFO", "stopped")
        return 0

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_metrics.set()

    def _connect_and_serve(self) -> None:
        ws = WebSocket.connect(self.config.server_url, timeout=10, ca_file=self.config.tls_ca_file)
        self.ws = ws
        ws.sock.settimeout(10)
        self._handshake(ws)
        ws.sock.settimeout(0.5)
        self.connected.set()
        for feature in self.features:
            feature.on_connected()
        self.wake_metrics.set()
        last_frame = time.monotonic()
        while not self.stop_event.is_set():
            try:
                opcode, payload = ws.recv()
            except socket.timeout:
                if time.monotonic() - last_frame > DEAD_LINK_S:
                    raise WebSocketClosed(1006, "no frame from the server for %d s" % DEAD_LINK_S)
                continue
            last_frame = time.monotonic()
            if opcode == OP_TEXT:
                self._on_text(payload)
            else:
                self._on_binary(payload)
        ws.close(1001, "agent stopping")
        ws.sock.settimeout(2)
        try:
            while True:
                ws.recv()  # until the server answers the close
        except (WebSocketClosed, OSError):
            pass

    def _handshake(self, ws: WebSocket) -> None:
        challenge = self._receive_json(ws)
        problem = validate_message(challenge, "server-to-agent")
        if problem or challenge["type"] != "challenge":
            raise ConnectionError("expected a challenge from the server: %s" % (problem or challenge["type"]))
        nonce = challenge["data"]["nonce"]
        signature = sign(self.config.private_key, auth_message(nonce, self.config.node_id), self.config.state_dir)
        host = {}
        COLLECTORS["host"](self.sampler, host)
        ws.send_text(json.dumps({"type": "hello", "data": {
            "node_id": self.config.node_id, "nonce": nonce, "signature": signature, "protocol": PROTOCOL_VERSION,
            "agent_version": AGENT_VERSION, "capabilities": self.capabilities, "host": host["host"]}}))
        welcome = self._receive_json(ws)
        problem = validate_message(welcome, "server-to-agent")
        if problem or welcome["type"] != "welcome":
            raise ConnectionError("expected a welcome from the server: %s" % (problem or welcome["type"]))
        self.apply_config(welcome["data"]["config"])
        log("INFO", "connected to %s as %s (%s)" % (self.config.server_url, welcome["data"]["name"], self.config.node_id))

    @staticmethod
    def _receive_json(ws: WebSocket) -> Dict[str, Any]:
        opcode, payload = ws.recv()
        if opcode != OP_TEXT:
            raise ConnectionError("expected a text frame during the handshake")
        try:
            return json.loads(payload.decode("utf-8"))
        except ValueError:
            raise ConnectionError("the server sent invalid JSON during the handshake")

    def _disconnected(self) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if self.ws is not None:
            self.ws.shutdown()
        self.ws = None
        if was_connected:
            for feature in self.features:
                feature.on_disconnected()

    # ---- receiving

    def _on_text(self, payload: bytes) -> None:
        try:
            message = json.loads(payload.decode("utf-8"))
        except ValueError as e:
            self.send({"type": "error", "data": {"code": "invalid_json", "message": ("invalid JSON: %s" % e)[:1024]}})
            return
        problem = validate_message(message, "server-to-agent")
        ref = message.get("id") if isinstance(message, dict) and isinstance(message.get("id"), str) else None
        reply = {"id": ref} if ref else {}
        if problem:
            code = "unknown_type" if problem.startswith("unknown message type") else "invalid_message"
            self.send(dict(reply, type="error", data={"code": code, "message": problem[:1024]}))
            return
        handler = self.handlers.get(message["type"])
        if handler is None and message["type"] in ("logs.ack", "logs.nack") and ref:
            handler = self.handlers.get("%s:%s" % (message["type"], ref.split("-")[0] + "-"))
        if handler is None:
            self.send(dict(reply, type="error", data={"code": "unsupported", "ref_type": message["type"],
                                                        "message": "this agent does not support %s" % message["type"]}))
            return
        try:
            handler(message)
        except Exception as e:  # one failing request must not take the connection down
            log("ERROR", "handling %s failed: %s: %s" % (message["type"], type(e).__name__, e))
            self.send(dict(reply, type="error", data={"code": "internal_error", "ref_type": message["type"], "message": str(e)[:1024]}))

    def _on_binary(self, payload: bytes) -> None:
        frame = decode_binary_frame(payload)
        handler = self.binary_handlers.get(frame[0]) if frame else None
        if frame is None or handler is None:
            self.send({"type": "error", "data": {"code": "invalid_message", "message": "binary frame refused"}})
            return
        handler(frame[1], frame[2])

    # ---- hardware state

    def _metrics_loop(self) -> None:
        while not self.stop_event.is_set():
            self.wake_metrics.clear()
            if self.connected.is_set():
                state = self.sampler.sample(self.config.metrics_interval_s)
                self.send({"type": "hardware.state", "data": state})
            self.wake_metrics.wait(self.config.metrics_interval_s)



##############################################################################
# main()
##############################################################################


def print_state(args: List[str]) -> int:
    roots = {"--proc-root": "/proc", "--sys-root": "/sys", "--etc-root": "/etc"}
    for i, arg in enumerate(args):
        if arg in roots and i + 1 < len(args):
            roots[arg] = args[i + 1]
    sampler = Sampler(roots["--proc-root"], roots["--sys-root"], roots["--etc-root"])
    time.sleep(0.5)
    sys.stdout.write(json.dumps(sampler.sample(0.5), indent=2) + "\n")
    return 0


USAGE = """usage: dvic_agent.py --config PATH     run the agent (systemd: dvic-agent.service)
       dvic_agent.py --print-state [--proc-root DIR] [--sys-root DIR] [--etc-root DIR]
       dvic_agent.py --version
"""


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--version" in args:
        sys.stdout.write("dvic-agent %s (protocol %d)\n" % (AGENT_VERSION, PROTOCOL_VERSION))
        return 0
    if "--print-state" in args:
        return print_state(args)
    if len(args) != 2 or args[0] != "--config":
        sys.stderr.write(USAGE)
        return 2
    try:
        config = load_config(args[1])
    except ConfigError as e:
        sys.stderr.write("dvic-agent: %s\n" % e)
        return 2
    try:
        os.makedirs(config.state_dir, mode=0o700, exist_ok=True)
    except OSError as e:
        sys.stderr.write("dvic-agent: cannot create state dir %s: %s\n" % (config.state_dir, e.strerror))
        return 2
    agent = Agent(config)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    log("INFO", "dvic-agent %s starting, server %s" % (AGENT_VERSION, config.server_url))
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
