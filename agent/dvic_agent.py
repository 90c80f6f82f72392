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
# Imports (ssl, subprocess, pty, resource and ctypes are imported where used:
# most agents never need some of them, and every module costs resident
# memory; programs run through posix_spawn, see spawn_reading)
##############################################################################

import base64
import errno
import glob
import json
import json.scanner  # loaded by json already; named for the scanner its decoder uses
import os
import random
import re
import select
import signal
import socket
import stat
import struct
import sys
import threading
import time
from collections import OrderedDict

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~1.5 MiB at run time; annotations are only read by pyright
    from typing import Any, Callable, Dict, List, Optional, Set, Tuple

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
    "container_logs": True,
    "docker_socket": "/var/run/docker.sock",
    "system_logs": "auto",
    "journalctl": "journalctl",
    "syslog_path": "/var/log/syslog",
    "log_batch_max_records": 1000,
    "log_batch_max_delay_ms": 100,
    "log_answer_timeout_s": 30.0,
    "log_buffer_max_bytes": 8 * 1024 * 1024,
    "max_open_log_files": 256,
    "max_log_files": 10000,
    "untrusted_log_files": "show",
    "dead_link_s": 45.0,
    "terminal_shell": "",
    "tls_ca_file": "",
    "tls_cert_sha256": "",
    "keepalive_port": 0,
    "deploy_roots": ["/opt/dvic-demos"],
    "update_root": "/opt/dvic-agent",
    "update_hello_timeout_s": 60.0,
    "update_stable_s": 30.0,
}
CONFIG_KEYS = set(CONFIG_DEFAULTS) | {"server_url", "server_urls", "node_id", "key_path", "private_key"}
MAX_SERVER_URLS = 16
SERVER_URL_RE = re.compile(r"^wss?://[^/\s]+")


class ConfigError(Exception):
    """A config the agent cannot run with; reported in one line, exit code 2."""


class Config(object):
    """The agent's settings: the config file over the defaults; the server may push some."""

    def __init__(self, values: Dict[str, Any]):
        merged = dict(CONFIG_DEFAULTS)
        merged.update(values)
        self.server_urls = server_list(merged.get("server_url"), merged.get("server_urls"))
        # The server in use: the connection loop moves it along server_urls when one fails, and
        # everything else that talks to the server (the keepalive relay) follows it.
        self.server_url = self.server_urls[0] if self.server_urls else ""
        self.node_id = str(merged.get("node_id", ""))
        self.key_path = str(merged.get("key_path", ""))
        self.private_key = str(merged.get("private_key", ""))
        self.metrics_interval_s = float(merged["metrics_interval_s"])
        self.state_dir = str(merged["state_dir"])
        self.proc_root = str(merged["proc_root"])
        self.sys_root = str(merged["sys_root"])
        self.etc_root = str(merged["etc_root"])
        self.log_dir = str(merged["log_dir"])
        self.container_logs = bool(merged["container_logs"])
        self.docker_socket = str(merged["docker_socket"])
        self.system_logs = str(merged["system_logs"])
        self.journalctl = str(merged["journalctl"])
        self.syslog_path = str(merged["syslog_path"])
        self.log_batch_max_records = int(merged["log_batch_max_records"])
        self.log_batch_max_delay_ms = int(merged["log_batch_max_delay_ms"])
        self.log_answer_timeout_s = float(merged["log_answer_timeout_s"])
        self.log_buffer_max_bytes = int(merged["log_buffer_max_bytes"])
        self.max_open_log_files = int(merged["max_open_log_files"])
        self.max_log_files = int(merged["max_log_files"])
        self.untrusted_log_files = str(merged["untrusted_log_files"])
        self.dead_link_s = float(merged["dead_link_s"])
        self.terminal_shell = str(merged["terminal_shell"])
        self.tls_ca_file = str(merged["tls_ca_file"])
        self.tls_cert_sha256 = str(merged["tls_cert_sha256"]).replace(":", "").lower()
        self.keepalive_port = int(merged["keepalive_port"])
        if not isinstance(merged["deploy_roots"], list):
            raise ValueError("deploy_roots must be a list of directories")
        self.deploy_roots = [str(r) for r in merged["deploy_roots"]]
        self.update_root = str(merged["update_root"])
        self.update_hello_timeout_s = float(merged["update_hello_timeout_s"])
        self.update_stable_s = float(merged["update_stable_s"])
        self.path = ""  # the file it was read from (a new version's --selftest reads it too)


def server_list(server_url: Any, server_urls: Any) -> List[str]:
    """server_url first (the key enrollment writes), then server_urls, each once, in order."""
    urls = [server_url] if server_url else []
    for url in server_urls if isinstance(server_urls, list) else []:
        if url not in urls:
            urls.append(url)
    return [str(url) for url in urls]


def server_urls_problem(values: Dict[str, Any]) -> Optional[str]:
    """What is wrong with the server keys of a config file, or None."""
    single, several = values.get("server_url"), values.get("server_urls")
    if single is None and several is None:
        return 'missing "server_url" (or "server_urls")'
    if single is not None and not isinstance(single, str):
        return '"server_url" must be a string'
    if several is not None and (not isinstance(several, list) or not 1 <= len(several) <= MAX_SERVER_URLS
                                or not all(isinstance(url, str) for url in several)):
        return '"server_urls" must be a list of 1 to %d URLs' % MAX_SERVER_URLS
    for key, url in [("server_url", single)] + [("server_urls", url) for url in several or []]:
        if url is not None and not SERVER_URL_RE.match(url):
            return '"%s" must start with ws:// or wss:// (%s)' % (key, url[:200])
    return None


# A config value out of range is refused at start, with the key in the message: (key, check, what).
CONFIG_CHECKS: List[Tuple[str, Callable[[Any], bool], str]] = [
    ("metrics_interval_s", lambda v: 0.2 <= v <= 3600, "must be between 0.2 and 3600"),
    ("log_batch_max_records", lambda v: 1 <= v <= 10000, "must be between 1 and 10000"),
    ("log_batch_max_delay_ms", lambda v: 0 <= v <= 60000, "must be between 0 and 60000"),
    ("log_buffer_max_bytes", lambda v: v >= 1024 * 1024, "must be at least 1048576"),
    ("max_open_log_files", lambda v: v >= 4, "must be at least 4"),
    ("max_log_files", lambda v: v >= 1, "must be at least 1"),
    ("untrusted_log_files", lambda v: v in ("show", "ignore"), 'must be "show" or "ignore"'),
    ("system_logs", lambda v: v in ("auto", "journal", "syslog", "off"), 'must be "auto", "journal", "syslog" or "off"'),
    ("dead_link_s", lambda v: 1 <= v <= 3600, "must be between 1 and 3600"),
    ("keepalive_port", lambda v: 0 <= v <= 65535, "must be between 0 (off) and 65535"),
    ("log_answer_timeout_s", lambda v: 1 <= v <= 3600, "must be between 1 and 3600"),
    ("deploy_roots", lambda v: all(r.startswith("/") and os.path.normpath(r) not in ("/", "//") for r in v), "must be absolute directories, not /"),
    ("update_hello_timeout_s", lambda v: 1 <= v <= 3600, "must be between 1 and 3600"),
    ("update_stable_s", lambda v: 1 <= v <= 3600, "must be between 1 and 3600"),
    ("update_root", lambda v: v.startswith("/"), "must be an absolute path"),
    ("tls_cert_sha256", lambda v: v == "" or re.match(r"^[0-9a-f]{64}$", v) is not None, "must be 64 hex digits (SHA-256 of the DER certificate)"),
]


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
    problem = server_urls_problem(values)
    if problem:
        raise fail(problem)
    if not isinstance(values.get("node_id"), str) or not values["node_id"]:
        raise fail('missing "node_id"')
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
    config.path = os.path.abspath(path)
    for key, check, what in CONFIG_CHECKS:
        if not check(getattr(config, key)):
            raise fail('"%s" %s' % (key, what))
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


def _refuse_constant(name: str) -> Any:
    raise ValueError("%s is not JSON" % name)


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0:  # inf (1e400) or nan: json.dumps would write them back as bare words
        raise ValueError("%s is out of range" % text)
    return value


STRICT_JSON = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
STRICT_SCAN: Any = json.scanner.make_scanner(STRICT_JSON)  # type: ignore[arg-type]  # the C scanner, with the decoder's hooks


def parse_json(text: str) -> Any:
    """JSON as the server reads it: NaN, Infinity and numbers that overflow to them are refused
    (Python's json accepts them and writes them back as words no other parser reads). Deep
    nesting raises ValueError too, never RecursionError: the input may come from any local user.
    The C scanner is called directly: decode() adds two regex matches per call, and every log
    line goes through here."""
    if text[:1].isspace():
        text = text.strip()
    try:
        value, end = STRICT_SCAN(text, 0)
    except StopIteration:
        raise ValueError("not JSON")
    except RecursionError:
        raise ValueError("nested too deeply")
    if end != len(text) and not text[end:].isspace():
        raise ValueError("extra data after the JSON value")
    return value


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON. A lone surrogate (a "\\ud800" escape in a demo's line) becomes "?"
    rather than an exception."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def poll_wait(fds: List[int], timeout: float) -> List[int]:
    """The fds (of those given) that are readable within timeout seconds. poll, not select:
    select fails on descriptors above 1023, and an agent following many files has such."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    try:
        return [fd for fd, _ in poller.poll(max(0.0, timeout) * 1000)]
    except InterruptedError:
        return []


class Inbox(object):
    """Messages for one worker thread from the others (acks from the connection thread, say).
    Only the worker touches its own state: no lock around it, no half-applied update."""

    def __init__(self) -> None:
        self.items: List[Any] = []
        self.lock = threading.Lock()
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)

    def put(self, item: Any) -> None:
        with self.lock:
            self.items.append(item)
        try:
            os.write(self.write_fd, b"!")
        except OSError:
            pass  # the pipe is full: the worker is awake anyway

    def take(self) -> List[Any]:
        with self.lock:
            items, self.items = self.items, []
        try:
            while os.read(self.read_fd, 4096):
                pass
        except OSError:
            pass
        return items

    def wait(self, timeout: float, fds: Optional[List[int]] = None) -> List[int]:
        """Until something is put, one of fds is readable, or timeout; returns the ready fds."""
        if self.items:
            return [self.read_fd]
        return poll_wait([self.read_fd] + (fds or []), timeout)


def release_memory() -> None:
    """Gives freed heap pages back to the kernel. Compiling this file at start and a burst of
    logs leave megabytes of free heap that glibc would otherwise keep resident."""
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, ImportError):
        pass


def spawn_reading(argv: List[str]) -> Tuple[int, int, int]:
    """Starts a program with its output on pipes: (pid, stdout fd, stderr fd). Not the subprocess
    module: it would stay imported (and resident) for the agent's lifetime after one use."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)]
        pid = os.posix_spawnp(argv[0], argv, dict(os.environ), file_actions=actions)
    except OSError:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        for fd in (out_w, err_w, devnull):
            os.close(fd)
    return pid, out_r, err_r


def run_program(argv: List[str], timeout: float) -> Tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr) of a short program."""
    pid, out_r, err_r = spawn_reading(argv)
    chunks: Dict[int, List[bytes]] = {out_r: [], err_r: []}
    reading = [out_r, err_r]
    deadline = time.monotonic() + timeout
    try:
        while reading and time.monotonic() < deadline:
            for fd in poll_wait(reading, deadline - time.monotonic()):
                chunk = os.read(fd, 65536)
                chunks[fd].append(chunk)
                if not chunk:
                    reading.remove(fd)
    finally:
        os.close(out_r)
        os.close(err_r)
    return _wait_or_kill(pid, deadline), b"".join(chunks[out_r]), b"".join(chunks[err_r])


def _wait_or_kill(pid: int, deadline: float) -> int:
    """The exit code of a child (-signal when killed), killed once the deadline passed."""
    while True:
        late = time.monotonic() >= deadline
        if late:
            _kill_quietly(pid, signal.SIGKILL)
        done, status = os.waitpid(pid, 0 if late else os.WNOHANG)
        if done:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
        time.sleep(0.01)


def _kill_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass

##############################################################################
# Protocol: embedded schemas, validation, binary frames, signing
##############################################################################

# >>> generated by protocol/scripts/generate.mjs: protocol schemas and constants (do not edit)
PROTOCOL_SCHEMAS = json.loads(r'''[
{"$id":"https://dvic.devinci.fr/protocol/v1/common.json","$defs":{"messageId":{"type":"string","minLength":1,"maxLength":64},"uuid":{"type":"string","pattern":"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},"epochMs":{"type":"integer","minimum":0},"bytes":{"type":"integer","minimum":0},"percent":{"type":"number","minimum":0,"maximum":100},"channel":{"type":"integer","minimum":1,"maximum":4294967295},"shortText":{"type":"string","maxLength":256},"logLevel":{"enum":["TRACE","DEBUG","INFO","WARN","ERROR","FATAL"]},"capability":{"type":"string","pattern":"^[a-z][a-z0-9_.-]{0,63}$"},"hostFacts":{"type":"object","required":["hostname","os","kernel","arch","boot_id","agent_version"],"properties":{"hostname":{"type":"string","minLength":1,"maxLength":255},"os":{"type":"string","maxLength":256},"kernel":{"type":"string","maxLength":256},"arch":{"type":"string","maxLength":64},"boot_id":{"type":"string","maxLength":64},"agent_version":{"type":"string","maxLength":64},"python_version":{"type":"string","maxLength":64},"cpu_model":{"type":"string","maxLength":256},"cpu_count":{"type":"integer","minimum":1},"machine_id":{"type":"string","maxLength":64}}},"logRecord":{"type":"object","required":["ts","level","message"],"properties":{"ts":{"type":"string","maxLength":40},"level":{"$ref":"#/$defs/logLevel"},"message":{"type":"string","maxLength":70000},"offset":{"$ref":"#/$defs/bytes"},"fields":{"type":"object"},"split":{"type":"boolean"},"lost_lines":{"type":"integer","minimum":1}}},"role":{"enum":["viewer","operator","admin"]},"deployId":{"type":"string","pattern":"^[A-Za-z0-9_-]{1,64}$"},"deployStep":{"enum":["queued","downloading","verifying","extracting","pre_command","switching","post_command","rolling_back","done","failed","cancelled"]},"replicaId":{"type":"string","pattern":"^[A-Za-z0-9_-]{1,64}$"}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/envelope.json","type":"object","required":["type","data"],"properties":{"type":{"type":"string","pattern":"^[a-z][a-z0-9_.]{0,63}$"},"id":{"$ref":"common.json#/$defs/messageId"},"data":{"type":"object"}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/log-header.json","type":"object","required":["dvic_log","pid"],"properties":{"dvic_log":{"const":1},"token":{"type":"string","pattern":"^[A-Za-z0-9_-]{16,64}$"},"generation":{"type":"integer","minimum":0,"maximum":1000000000},"demo":{"type":"string","minLength":1,"maxLength":128},"pid":{"type":"integer","minimum":1,"maximum":4194304},"start_time":{"type":"integer","minimum":0,"maximum":9007199254740991},"exe":{"type":"string","maxLength":4096},"argv":{"type":"array","maxItems":256,"items":{"type":"string","maxLength":4096}},"user":{"type":"string","maxLength":64},"uid":{"type":"integer","minimum":0,"maximum":4294967294},"hostname":{"type":"string","maxLength":255},"lang":{"type":"string","maxLength":32},"lib_version":{"type":"string","maxLength":64},"started_at":{"type":"string","maxLength":40},"records_before":{"type":"integer","minimum":0,"maximum":9007199254740991}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/agent.status.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"agent.status"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["workers","problems"],"properties":{"workers":{"type":"array","maxItems":32,"items":{"type":"object","required":["name","alive","restarts"],"properties":{"name":{"type":"string","maxLength":64},"alive":{"type":"boolean"},"restarts":{"type":"integer","minimum":0},"last_error":{"type":"string","maxLength":1024}}}},"problems":{"type":"array","maxItems":100,"items":{"type":"object","required":["code","message","count","since"],"properties":{"code":{"type":"string","pattern":"^[a-z][a-z0-9_.]{0,63}$"},"message":{"type":"string","maxLength":1024},"subject":{"type":"string","maxLength":512},"count":{"type":"integer","minimum":1},"since":{"$ref":"../common.json#/$defs/epochMs"},"last":{"$ref":"../common.json#/$defs/epochMs"}}}},"log_files":{"type":"object","properties":{"followed":{"type":"integer","minimum":0},"open":{"type":"integer","minimum":0},"max_open":{"type":"integer","minimum":0},"skipped":{"type":"integer","minimum":0},"buffered_bytes":{"type":"integer","minimum":0},"max_buffered_bytes":{"type":"integer","minimum":0}}},"system_logs":{"type":"object","required":["mode","readable"],"properties":{"mode":{"enum":["journal","syslog","off"]},"readable":{"type":"boolean"},"message":{"type":"string","maxLength":1024}}}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/challenge.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"challenge"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["protocol","nonce","expires_in_ms"],"properties":{"protocol":{"type":"integer","minimum":1},"nonce":{"type":"string","maxLength":128,"minLength":32,"pattern":"^[A-Za-z0-9_-]+$"},"expires_in_ms":{"type":"integer","minimum":1},"server_version":{"type":"string","maxLength":64}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/config.push.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"config.push"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":[],"properties":{"metrics_interval_s":{"type":"number","minimum":0.2,"maximum":3600},"demo_state_interval_s":{"type":"number","minimum":0.2,"maximum":3600},"log_batch_max_records":{"type":"integer","minimum":1,"maximum":10000},"log_batch_max_delay_ms":{"type":"integer","minimum":1,"maximum":60000}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/demo.logs.json","x-direction":"agent-to-server","type":"object","required":["type","id","data"],"properties":{"type":{"const":"demo.logs"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["token","demo","start_offset","end_offset","records"],"properties":{"token":{"type":"string","maxLength":64,"pattern":"^[A-Za-z0-9_-]{16,64}$"},"demo":{"type":"string","maxLength":128},"file_generation":{"type":"integer","minimum":0},"start_offset":{"$ref":"../common.json#/$defs/bytes"},"end_offset":{"$ref":"../common.json#/$defs/bytes"},"records":{"type":"array","maxItems":10000,"items":{"$ref":"../common.json#/$defs/logRecord"}}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/demo.state.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"demo.state"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["full","demos"],"properties":{"full":{"type":"boolean"},"demos":{"type":"array","maxItems":4096,"items":{"type":"object","required":["token","demo","pid","alive"],"properties":{"token":{"type":"string","maxLength":64,"pattern":"^[A-Za-z0-9_-]{16,64}$"},"demo":{"type":"string","maxLength":128},"pid":{"type":"integer","minimum":1},"start_time":{"type":"integer","minimum":0},"user":{"type":"string","maxLength":64},"uid":{"type":"integer","minimum":0},"executable":{"type":"string","maxLength":4096},"argv":{"type":"array","maxItems":256,"items":{"type":"string","maxLength":4096}},"alive":{"type":"boolean"},"started_at":{"type":"string","maxLength":40},"exited_at":{"type":"string","maxLength":40},"container":{"type":"object","required":[],"properties":{"id":{"type":"string","maxLength":128},"name":{"type":"string","maxLength":256},"runtime":{"type":"string","maxLength":32}}},"file_uid":{"type":"integer","minimum":0,"maximum":4294967294},"trusted":{"type":"boolean"}}}}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/deploy.fetch.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"deploy.fetch"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["deploy_id","offset","length"],"additionalProperties":false,"properties":{"deploy_id":{"$ref":"../common.json#/$defs/deployId"},"offset":{"$ref":"../common.json#/$defs/bytes"},"length":{"type":"integer","minimum":1,"maximum":16777216}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/deploy.request.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"deploy.request"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["deploy_id","action","path"],"additionalProperties":false,"properties":{"deploy_id":{"$ref":"../common.json#/$defs/deployId"},"action":{"enum":["deploy","rollback","cancel"]},"path":{"type":"string","minLength":2,"maxLength":4096,"pattern":"^/"},"channel":{"$ref":"../common.json#/$defs/channel"},"sha256":{"type":"string","pattern":"^[0-9a-f]{64}$"},"size":{"$ref":"../common.json#/$defs/bytes"},"extract":{"type":"boolean"},"format":{"enum":["file","tar.gz","zip"]},"mode":{"type":"string","pattern":"^[0-7]{3,4}$"},"owner":{"type":"string","maxLength":65,"pattern":"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$"},"pre_command":{"type":"string","maxLength":65536},"post_command":{"type":"string","maxLength":65536},"chunk_bytes":{"type":"integer","minimum":1024,"maximum":16777216}},"oneOf":[{"properties":{"action":{"const":"deploy"}},"required":["channel","sha256","size","format"]},{"properties":{"action":{"enum":["rollback","cancel"]}}}]}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/deploy.status.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"properties":{"type":{"const":"deploy.status"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["deploy_id","state"],"additionalProperties":false,"properties":{"deploy_id":{"$ref":"../common.json#/$defs/deployId"},"state":{"$ref":"../common.json#/$defs/deployStep"},"bytes":{"$ref":"../common.json#/$defs/bytes"},"resumed_from":{"$ref":"../common.json#/$defs/bytes"},"message":{"type":"string","maxLength":1024}}}}},
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
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/update.chunk.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"additionalProperties":false,"properties":{"type":{"const":"update.chunk"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","additionalProperties":false,"required":["update_id","version","offset"],"properties":{"update_id":{"type":"string","minLength":1,"maxLength":64},"version":{"type":"string","maxLength":64},"offset":{"type":"integer","minimum":0},"data":{"type":"string","maxLength":400000,"pattern":"^[A-Za-z0-9+/]*={0,2}$"},"error":{"type":"string","maxLength":1024}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/update.fetch.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"additionalProperties":false,"properties":{"type":{"const":"update.fetch"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","additionalProperties":false,"required":["update_id","version","offset","length"],"properties":{"update_id":{"type":"string","minLength":1,"maxLength":64},"version":{"type":"string","maxLength":64},"offset":{"type":"integer","minimum":0},"length":{"type":"integer","minimum":1,"maximum":262144}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/update.request.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"additionalProperties":false,"properties":{"type":{"const":"update.request"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","additionalProperties":false,"required":["update_id","version","sha256","size","signature"],"properties":{"update_id":{"type":"string","minLength":1,"maxLength":64},"version":{"type":"string","minLength":1,"maxLength":64,"pattern":"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$"},"sha256":{"type":"string","pattern":"^[0-9a-f]{64}$"},"size":{"type":"integer","minimum":1,"maximum":16777216},"signature":{"type":"string","maxLength":1024,"pattern":"^[A-Za-z0-9+/]+={0,2}$"},"force":{"type":"boolean"}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/update.status.json","x-direction":"agent-to-server","type":"object","required":["type","data"],"additionalProperties":false,"properties":{"type":{"const":"update.status"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","additionalProperties":false,"required":["update_id","version","step"],"properties":{"update_id":{"type":"string","minLength":1,"maxLength":64},"version":{"type":"string","maxLength":64},"step":{"enum":["download","verify","selftest","switch","restart","healthy","rolled_back","failed"]},"progress":{"type":"number","minimum":0,"maximum":1},"message":{"type":"string","maxLength":1024}}}}},
{"$id":"https://dvic.devinci.fr/protocol/v1/messages/welcome.json","x-direction":"server-to-agent","type":"object","required":["type","data"],"properties":{"type":{"const":"welcome"},"id":{"$ref":"../common.json#/$defs/messageId"},"data":{"type":"object","required":["node_id","name","protocol","config"],"properties":{"node_id":{"$ref":"../common.json#/$defs/uuid"},"name":{"type":"string","maxLength":128},"protocol":{"type":"integer","minimum":1},"server_version":{"type":"string","maxLength":64},"capabilities":{"type":"array","maxItems":64,"items":{"$ref":"../common.json#/$defs/capability"}},"config":{"$ref":"config.push.json#/properties/data"},"max_frame_bytes":{"type":"integer","minimum":65536},"update_key":{"type":"string","maxLength":4096}}}}}
]''')
PROTOCOL_CONSTANTS = json.loads(r'''{"PROTOCOL_VERSION":1,"MAX_FRAME_BYTES":1048576,"TERMINAL_WINDOW_BYTES":262144,"CLOSE_CODES":{"normal":{"code":1000},"goingAway":{"code":1001},"protocolError":{"code":1002},"policyViolation":{"code":1008},"messageTooBig":{"code":1009},"serverError":{"code":1011},"tryAgainLater":{"code":1013},"authFailed":{"code":4001},"authTimeout":{"code":4002},"nodeRevoked":{"code":4003},"unknownNode":{"code":4004},"replayedNonce":{"code":4005},"replaced":{"code":4009},"slowConsumer":{"code":4010},"sessionEnded":{"code":4401},"terminalRefused":{"code":4404}}}''')
# <<< generated

SCHEMA_BASE = "https://dvic.devinci.fr/protocol/v1/"
# WebSocket close codes by name (protocol/constants.json).
CLOSE = dict((name, item["code"]) for name, item in PROTOCOL_CONSTANTS["CLOSE_CODES"].items())
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
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        raise SchemaError("%s does not match %s" % (where, schema["pattern"]))


PATTERNS: Dict[str, Any] = {}


def _pattern(source: str) -> Any:
    """A schema pattern with JavaScript's meaning of a final $: the very end. Python's $ also
    matches before a final newline, so "token\\n" would pass here and fail on the server."""
    if source not in PATTERNS:
        PATTERNS[source] = re.compile(source[:-1] + r"\Z" if source.endswith("$") and not source.endswith("\\$") else source)
    return PATTERNS[source]


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
OP_ARTIFACT_CHUNK = 0x10  # answers deploy.fetch: 8-byte offset, then the bytes


def encode_binary_frame(opcode: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BI", opcode, channel) + payload


def decode_binary_frame(frame: bytes) -> Optional[Tuple[int, int, bytes]]:
    """(opcode, channel, payload), or None for a frame the protocol refuses."""
    if len(frame) < 5:
        return None
    opcode, channel = struct.unpack(">BI", frame[:5])
    if opcode not in (OP_TERMINAL_DATA, OP_TUNNEL_DATA, OP_CREDIT, OP_ARTIFACT_CHUNK) or channel == 0:
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
        code, out, err = run_program(command, 30)
    finally:
        for path in (key_file, message_file):
            if os.path.exists(path):
                os.unlink(path)
        os.rmdir(tmp)
    if code != 0 or not out:
        raise RuntimeError("openssl could not sign: %s" % err.decode("utf-8", "replace").strip()[:200])
    return out

##############################################################################
# WebSocket client (RFC 6455)
##############################################################################

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def tls_wrap(sock: Any, host: str, ca_file: str, pin_sha256: str) -> Any:
    """TLS to the server. With a pinned certificate (tls_cert_sha256), that certificate and no
    other is accepted, whatever its issuer or names: a lab server often has a self-signed one."""
    import ssl
    if not pin_sha256:
        return ssl.create_default_context(cafile=ca_file or None).wrap_socket(sock, server_hostname=host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the digest below is the whole check
    wrapped = context.wrap_socket(sock, server_hostname=host)
    import hashlib  # ssl has loaded libcrypto already
    der = wrapped.getpeercert(binary_form=True) or b""
    digest = hashlib.sha256(der).hexdigest()
    if digest != pin_sha256:
        wrapped.close()
        raise ConnectionError("the server's TLS certificate (sha256 %s) is not the pinned one (tls_cert_sha256 %s)" % (digest, pin_sha256))
    return wrapped


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
        # With recv_timeout set, recv() waits for data with poll and the socket itself stays
        # blocking: a send is never cut in the middle of a frame by a receive timeout.
        self.recv_timeout: Optional[float] = None
        # When the last bytes arrived, pings included: what tells a quiet link from a dead one.
        self.last_received = time.monotonic()
        # A fragmented message being reassembled.
        self.message_opcode: Optional[int] = None
        self.parts: List[bytes] = []
        self.size = 0

    @classmethod
    def connect(cls, url: str, timeout: float = 10.0, ca_file: str = "", max_message: int = MAX_MESSAGE_BYTES,
                pin_sha256: str = "") -> "WebSocket":
        match = re.match(r"^(wss?)://(\[[^\]]+\]|[^/:]+)(?::(\d+))?(/[^#]*)?$", url)
        if not match:
            raise ValueError("not a WebSocket URL: %s" % url)
        scheme, host, port, path = match.group(1), match.group(2).strip("[]"), match.group(3), match.group(4) or "/"
        secure = scheme == "wss"
        # An ASCII host goes as bytes: a str would make socket load the idna codec and
        # unicodedata (half a MiB resident) for the life of the agent.
        address: Any = host.encode("ascii") if host.isascii() else host
        sock: Any = socket.create_connection((address, int(port or (443 if secure else 80))), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if secure:
                sock = tls_wrap(sock, host, ca_file, pin_sha256)
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

    def send_text_bytes(self, payload: bytes) -> None:
        """A text message already encoded as UTF-8 (log batches are built as bytes)."""
        self._send(OP_TEXT, payload)

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

    def close(self, code: int = CLOSE["normal"], reason: str = "") -> None:
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
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a send blocked in another thread; close alone would not
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _send(self, opcode: int, payload: bytes) -> None:
        frame = encode_frame(opcode, payload)
        with self.send_lock:
            if self.closed:
                raise ConnectionError("WebSocket is closed")
            try:
                self.sock.sendall(frame)
            except OSError as e:
                # Part of the frame may be out: nothing sent after it could be understood.
                self.shutdown()
                raise ConnectionError("WebSocket send failed: %s" % e)

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
                self.close(code if code not in (1005, 1006) else CLOSE["normal"], "")
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
            self._wait_readable()
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
            self.last_received = time.monotonic()
        return self.buffer[:n]

    def _wait_readable(self) -> None:
        """Raises socket.timeout when recv_timeout passes with nothing to read."""
        if self.recv_timeout is None or self.closed:
            return
        pending = getattr(self.sock, "pending", None)  # TLS: bytes already decrypted, invisible to poll
        if pending is not None and pending():
            return
        if not poll_wait([self.sock.fileno()], self.recv_timeout):
            raise socket.timeout("no data for %.1f s" % self.recv_timeout)

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
# Features, their worker threads and the agent's own health (agent.status)
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

    def workers(self) -> Dict[str, Callable[[], None]]:
        """Loops to run in their own supervised threads, by name, for the agent's lifetime."""
        return {}

    def status(self, data: Dict[str, Any]) -> None:
        """Adds this feature's part of agent.status."""

    def on_connected(self) -> None:
        pass

    def on_disconnected(self) -> None:
        pass

    def stop(self) -> None:
        pass


MAX_PROBLEMS = 100  # agent.status holds at most this many; the rest are counted in the last one


class Problems(object):
    """What an admin should know about (a skipped log file, an unreadable journal): each
    (code, subject) once, with a count, however often it happens. Any thread may report."""

    def __init__(self) -> None:
        self.items: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self.lock = threading.Lock()

    def report(self, code: str, message: str, subject: str = "") -> None:
        now = int(time.time() * 1000)
        key = (code, subject[:512])
        with self.lock:
            item = self.items.get(key)
            if item is None and len(self.items) >= MAX_PROBLEMS - 1:
                key = ("problems.too_many", "")
                message = "more problems than agent.status can list; see the agent's log"
                item = self.items.get(key)
            if item is None:
                item = self.items[key] = {"code": key[0], "message": "", "count": 0, "since": now}
                if key[1]:
                    item["subject"] = key[1]
                log("WARN", "%s%s: %s" % (key[0], " (%s)" % key[1] if key[1] else "", message))
            item["message"] = message[:1024]
            item["count"] += 1
            item["last"] = now

    def clear(self, subject: str, code: Optional[str] = None) -> None:
        """Forgets the problems about a subject that is gone (a deleted file)."""
        with self.lock:
            for key in [k for k in self.items if k[1] == subject[:512] and (code is None or k[0] == code)]:
                del self.items[key]

    def codes(self) -> List[str]:
        with self.lock:
            return sorted(set(k[0] for k in self.items))

    def snapshot(self) -> List[Dict[str, Any]]:
        with self.lock:
            return sorted((dict(item) for item in self.items.values()), key=lambda i: i["since"])


WORKER_STABLE_S = 60.0  # a worker that ran this long before failing restarts without waiting long


class Worker(object):
    """A feature's loop in its own thread, restarted with backoff when it fails or returns."""

    def __init__(self, agent: Agent, name: str, target: Callable[[], None]):
        self.agent = agent
        self.name = name
        self.target = target
        self.alive = False
        self.restarts = 0
        self.last_error = ""

    def start(self) -> None:
        threading.Thread(target=self._supervise, name=self.name, daemon=True).start()

    def _supervise(self) -> None:
        failures = 0
        while not self.agent.stop_event.is_set():
            started = time.monotonic()
            self.alive = True
            error = self._run_once()
            self.alive = False
            if self.agent.stop_event.is_set():
                break
            self.restarts += 1
            self.last_error = error[:1024]
            failures = 0 if time.monotonic() - started >= WORKER_STABLE_S else failures + 1
            delay = min(BACKOFF_CAP_S, 0.5 * 2 ** min(failures, 8))
            log("ERROR", "worker %s stopped (%s): restarting in %.1f s" % (self.name, error, delay))
            self.agent.problems.report("worker.restarted", "stopped (%s), restarted after %.1f s" % (error, delay), self.name)
            self.agent.status_changed()
            self.agent.stop_event.wait(delay)

    def _run_once(self) -> str:
        try:
            self.target()
            return "the loop returned"
        except Exception as e:  # the supervisor exists to outlive any failure of the loop
            return "%s: %s (%s)" % (type(e).__name__, e, _where(e))

    def status(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"name": self.name[:64], "alive": self.alive, "restarts": self.restarts}
        if self.last_error:
            out["last_error"] = self.last_error
        return out


def _where(error: BaseException) -> str:
    """file:line where an exception was raised (traceback would cost an import)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return "%s:%d" % (os.path.basename(tb.tb_frame.f_code.co_filename), tb.tb_lineno) if tb else "?"


def fit_status(data: Dict[str, Any], limit: int) -> bytes:
    """agent.status as a frame under the limit: the oldest problems go first when it is not."""
    data = dict(data, problems=list(data["problems"]))
    while True:
        frame = encode_json({"type": "agent.status", "data": data})
        if len(frame) <= limit or not data["problems"]:
            return frame
        del data["problems"][:max(1, len(data["problems"]) // 4)]


# Every feature, in the order they start; each section below appends its own.
FEATURES: List[Callable[[Agent], Feature]] = []

##############################################################################
# Log shipping, shared by demo and system logs: batches capped in bytes, answers by batch id
##############################################################################

MAX_IN_FLIGHT = 4  # batches per stream sent and not yet answered
BATCH_OVERHEAD_BYTES = 2048  # envelope, id, token, demo name: room kept free in every frame
RETRY_MIN_S = 0.5
RETRY_CAP_S = 60.0
# The server's answers to a batch it could not parse or check: sending it again cannot help.
REFUSED_BATCH_CODES = ("invalid_message", "invalid_json", "unsupported", "unknown_type")


def batch_frame(kind: str, batch_id: str, fields: Dict[str, Any], records: List[bytes]) -> bytes:
    """A log batch as it goes on the wire; its records were encoded once, when read."""
    head = encode_json({"type": kind, "id": batch_id, "data": fields})
    return head[:-2] + b',"records":[' + b",".join(records) + b"]}}"


def retry_delay(retry_after_s: float, failures: int) -> float:
    """When to send a refused batch again: what the server asked, and at least an exponential
    backoff, with jitter so that the nodes of a lab do not all come back at the same moment."""
    backoff = min(RETRY_CAP_S, RETRY_MIN_S * 2 ** min(failures, 10))
    return max(retry_after_s, backoff) * random.uniform(1.0, 1.5)


class LogStream(object):
    """The records read from one offset space (a demo log file generation, the syslog file, the
    journal) and not yet acknowledged. A position is whatever its reader needs to resume (byte
    offset and line count, a journal cursor); the stream only hands them back.

    At most MAX_IN_FLIGHT batches wait for an answer. The acknowledged position is the end of the
    contiguous prefix of acknowledged batches. A nack, a timeout or a lost connection rewinds the
    reader to the start of the first batch not known to be stored; the server drops duplicates."""

    def __init__(self, position: Any, describe: Callable[[Any, Any], Dict[str, Any]], meter: Optional[List[int]] = None):
        self.describe = describe  # (start, end) -> the batch's fields besides its records
        self.meter = meter if meter is not None else [0]  # bytes pending, shared by a feature's streams
        self.read_position = position
        self.acked = position
        self.pending: List[Tuple[Any, Any, bytes]] = []
        self.pending_bytes = 0
        self.pending_since = 0.0
        self.in_flight: List[List[Any]] = []  # [batch id, start, end, sent at, acknowledged]
        self.retry_at = 0.0
        self.failures = 0
        self.rewinds = 0  # counts the times reading had to go back (the reader seeks then)
        self.owner: Any = None

    def settled(self) -> bool:
        return not self.pending and not self.in_flight

    def add(self, start: Any, end: Any, record: bytes, now: float) -> None:
        if not self.pending:
            self.pending_since = now
        self.pending.append((start, end, record))
        self.pending_bytes += len(record) + 1
        self.meter[0] += len(record) + 1
        self.read_position = end

    def due(self, now: float, max_records: int, max_bytes: int, delay_s: float) -> bool:
        """A batch should go now. Like Nagle: with nothing in flight a line goes at once (low
        latency when quiet); otherwise lines gather until a batch is full or old enough."""
        if not self.pending or len(self.in_flight) >= MAX_IN_FLIGHT or now < self.retry_at:
            return False
        return (not self.in_flight or len(self.pending) >= max_records or self.pending_bytes >= max_bytes
                or now - self.pending_since >= delay_s)

    def take(self, max_records: int, max_bytes: int) -> List[Tuple[Any, Any, bytes]]:
        """The next batch: as many records as fit in max_bytes (one at least)."""
        count = size = 0
        for _, _, record in self.pending:
            if count >= max_records or (count and size + len(record) + 1 > max_bytes):
                break
            size += len(record) + 1
            count += 1
        batch = self.pending[:count]
        del self.pending[:count]
        self.pending_bytes -= size
        self.meter[0] -= size
        return batch

    def sent(self, batch_id: str, start: Any, end: Any, now: float) -> None:
        self.in_flight.append([batch_id, start, end, now, False])

    def ack(self, batch_id: str) -> bool:
        """True when the acknowledged position moved."""
        for batch in self.in_flight:
            if batch[0] == batch_id:
                batch[4] = True
        moved = False
        while self.in_flight and self.in_flight[0][4]:
            self.acked = self.in_flight.pop(0)[2]
            moved = True
        if moved:
            self.failures = 0
        return moved

    def nack(self, batch_id: str, retry_after_s: float, now: float) -> List[str]:
        """Reading starts again at that batch, after the delay; returns the ids dropped."""
        ids = [b[0] for b in self.in_flight]
        if batch_id not in ids:
            return []
        self.failures += 1
        self.retry_at = now + retry_delay(retry_after_s, self.failures)
        return self._rewind(ids.index(batch_id))

    def expire(self, now: float, timeout: float) -> List[str]:
        """Rewinds to the oldest batch still waiting for its answer after timeout seconds."""
        for index, batch in enumerate(self.in_flight):
            if not batch[4] and now - batch[3] > timeout:
                return self._rewind(index)
        return []

    def rewind(self) -> List[str]:
        """The connection is gone: what was not acknowledged is read and sent again."""
        return self._rewind(0)

    def restart(self, position: Any) -> None:
        """Everything is acknowledged and the reader moves elsewhere (a new syslog file)."""
        self.read_position = self.acked = position

    def _rewind(self, index: int) -> List[str]:
        self.rewinds += 1
        if index < len(self.in_flight):
            self.read_position = self.in_flight[index][1]
        elif self.pending:
            self.read_position = self.pending[0][0]
        dropped = [b[0] for b in self.in_flight[index:]]
        del self.in_flight[index:]
        self.meter[0] -= self.pending_bytes
        self.pending, self.pending_bytes = [], 0
        return dropped


class LogShipper(object):
    """Sends the batches of one worker's streams and brings the server's answers (logs.ack,
    logs.nack, or an error naming a batch) back to that worker through its inbox."""

    def __init__(self, agent: Agent, kind: str, prefix: str, min_delay_ms: int = 0):
        self.agent = agent
        self.kind = kind
        self.prefix = prefix
        self.min_delay_ms = min_delay_ms  # system logs gather longer: many lines, rarely urgent
        self.inbox = Inbox()
        self.batches: Dict[str, LogStream] = {}
        self.seq = 0

    def flush(self, streams: List[LogStream], now: float) -> int:
        """Sends what is due; returns how many batches went out."""
        if not self.agent.connected.is_set():
            return 0
        config = self.agent.config
        budget = self.agent.frame_budget()
        sent = 0
        for stream in streams:
            delay = max(config.log_batch_max_delay_ms, self.min_delay_ms) / 1000.0
            while stream.due(now, config.log_batch_max_records, budget, delay):
                if not self._send(stream, budget, now):
                    return sent
                sent += 1
        return sent

    def _send(self, stream: LogStream, budget: int, now: float) -> bool:
        entries = stream.take(self.agent.config.log_batch_max_records, budget)
        self.seq += 1
        batch_id = "%s-%d" % (self.prefix, self.seq)
        start, end = entries[0][0], entries[-1][1]
        frame = batch_frame(self.kind, batch_id, stream.describe(start, end), [e[2] for e in entries])
        self.batches[batch_id] = stream
        self.agent.log_answers[batch_id] = self.inbox
        stream.sent(batch_id, start, end, now)
        if self.agent.send_frame(frame):
            return True
        self.forget(stream.rewind())
        return False

    def answer(self, message: Dict[str, Any]) -> None:
        """From the connection thread: the worker applies it."""
        self.inbox.put(message)

    def apply(self, message: Dict[str, Any], now: float) -> Optional[LogStream]:
        """Applies an answer; returns its stream (None for the answer to a batch sent again since)."""
        batch_id = message["id"]
        stream = self.batches.pop(batch_id, None)
        self.agent.log_answers.pop(batch_id, None)
        if stream is None:
            return None
        data = message["data"]
        if message["type"] == "logs.ack":
            stream.ack(batch_id)
        elif message["type"] == "logs.nack":
            log("WARN", "the server did not store log batch %s (%s): %s" % (batch_id, data["code"], data["message"]))
            self.forget(stream.nack(batch_id, data["retry_after_ms"] / 1000.0, now))
        elif data.get("code") in REFUSED_BATCH_CODES:
            self.agent.problems.report("logs.batch_refused", "the server refused a %s batch: %s" % (self.kind, data.get("message", "")))
            stream.ack(batch_id)  # skipped: the same bytes would be refused again, forever
        else:
            self.forget(stream.nack(batch_id, 5.0, now))
        return stream

    def expire(self, streams: List[LogStream], now: float) -> List[LogStream]:
        """Rewinds the streams with a batch unanswered for too long; returns them."""
        expired = []
        timeout = self.agent.config.log_answer_timeout_s
        for stream in streams:
            dropped = stream.expire(now, timeout)
            if dropped:
                log("WARN", "no answer to %s batch %s after %.0f s: sending it again" % (self.kind, dropped[0], timeout))
                self.forget(dropped)
                expired.append(stream)
        return expired

    def disconnected(self, streams: List[LogStream]) -> None:
        for stream in streams:
            stream.rewind()
        self.forget(list(self.batches))

    def forget(self, batch_ids: List[str]) -> None:
        for batch_id in batch_ids:
            self.batches.pop(batch_id, None)
            self.agent.log_answers.pop(batch_id, None)

##############################################################################
# Demo log tailer: discovery, trust, liveness, rotation, exactly-once shipping (docs/log-format.md)
##############################################################################

LOG_NAME_RE = re.compile(r"dvic_log_([A-Za-z0-9_-]{16,64})(?:\.(0|[1-9][0-9]{0,9}))?")
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL", "ERR": "ERROR"}
RECORD_KEYS = frozenset(("ts", "level", "message", "fields"))
MAX_LINE_BYTES = 64 * 1024
MAX_HEADER_BYTES = 256 * 1024  # argv can be long; a header line beyond this skips the file
MAX_TS_CHARS = 40
READ_CHUNK_BYTES = 256 * 1024
SCAN_INTERVAL_S = 1.0
LIVENESS_INTERVAL_S = 0.5
# A demo seen gone is reported once the server acknowledged every line of its file (its closing
# record says whether it ended cleanly: a death told first reads as a crash), or after this.
DEATH_REPORT_WAIT_S = 5.0
# A round (read, send) starts at most this often, unless the last one had a full batch to read:
# what arrives meanwhile (lines, acks, directory events) is handled together. Costs at most this
# much latency (the server's live tail sends every 50 ms too); saves most of the CPU per line at
# steady rates, where every write would otherwise wake the agent and make its own small batch.
ROUND_S = 0.05
IDLE_CLOSE_S = 30.0  # a file nobody wrote to for this long gives its descriptor back
ROTATED_GRACE_S = 2.0  # a rotated file's unfinished last line is shipped as is after this
MISSING_SCANS = 3  # scans without any file of a demo log before it is forgotten
RESERVED_FDS = 48  # descriptors kept for the connection, commands, terminals and the journal
HEADER_SCHEMA = SCHEMA_BASE + "log-header.json"
HEADER_INTEGERS = ("dvic_log", "generation", "pid", "start_time", "uid", "records_before")
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
              (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def parse_log_name(name: str) -> Optional[Tuple[str, Optional[int]]]:
    """dvic_log_<token>[.<generation>] -> (token, generation of a rotated file or None)."""
    match = LOG_NAME_RE.fullmatch(name)
    if not match:
        return None
    return match.group(1), int(match.group(2)) if match.group(2) is not None else None


def parse_log_header(line: bytes) -> Tuple[Optional[Dict[str, Any]], str]:
    """Line 1 of a log file -> (header, "") or (None, why the file is not followed)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None, "the header is not valid UTF-8"
    try:
        header = parse_json(text)
    except ValueError as e:
        return None, "the header is not JSON (%s)" % e
    try:
        check_schema(header, SCHEMAS_BY_ID[HEADER_SCHEMA], HEADER_SCHEMA)
    except SchemaError as e:
        return None, "bad header: %s" % e
    for key in HEADER_INTEGERS:
        if key in header:
            header[key] = int(header[key])  # 3.0 is an integer to JSON Schema
    return header, ""


def parse_log_line(line: str, now_iso: str) -> Dict[str, Any]:
    """A record line -> {ts, level, message[, fields]}. Never fails: what is not a record is
    kept whole as a raw INFO record, so a print() that bypassed the library still arrives."""
    try:
        obj = parse_json(line)
    except ValueError:
        obj = None
    return log_record(obj, line, now_iso)


def log_record(obj: Any, line: str, now_iso: str) -> Dict[str, Any]:
    if not isinstance(obj, dict) or not isinstance(obj.get("level"), str):
        return {"ts": now_iso, "level": "INFO", "message": line, "fields": {"raw": True}}
    level = LEVEL_ALIASES.get(obj["level"].upper(), obj["level"].upper())
    message = obj.get("message")
    ts = obj.get("ts")
    record: Dict[str, Any] = {
        "ts": ts if isinstance(ts, str) and len(ts) <= MAX_TS_CHARS else now_iso,
        "level": level if level in LEVELS else "INFO",
        "message": message if isinstance(message, str) else json.dumps(message),
    }
    fields = dict(obj["fields"]) if isinstance(obj.get("fields"), dict) else {}
    if level not in LEVELS:
        fields["level"] = obj["level"]
    if isinstance(ts, str) and len(ts) > MAX_TS_CHARS:
        fields["original_ts"] = ts[:256]
    if fields:
        record["fields"] = fields
    return record


def encode_log_line(raw: bytes, offset: int, piece: bool, split: bool, now_iso: str) -> bytes:
    """One line (or a piece of a long one) -> the record's JSON as it goes in a batch."""
    if piece:
        record = {"ts": now_iso, "level": "INFO", "message": raw.decode("utf-8", "replace"), "fields": {"raw": True}}
    else:
        plain = plain_record(raw, offset)
        if plain is not None:
            return plain
        text = raw.decode("utf-8", "replace")
        try:
            obj = parse_json(text)
        except ValueError:
            obj = None
        record = log_record(obj, text, now_iso)
    record["offset"] = offset
    if split:
        record["split"] = True
    return encode_json(record)


def plain_record(raw: bytes, offset: int) -> Optional[bytes]:
    """A line the library wrote is already a compact record the server takes as written (its own
    keys, valid UTF-8, nothing out of range): only its offset is added, it is not re-encoded."""
    try:
        obj = parse_json(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None
    if (type(obj) is not dict or obj.get("level") not in LEVELS or type(obj.get("message")) is not str
            or type(obj.get("ts")) is not str or len(obj["ts"]) > MAX_TS_CHARS or not RECORD_KEYS.issuperset(obj)
            or type(obj.get("fields", obj)) is not dict):
        return None
    body = raw.rstrip(b" \t\r")
    return body[:-1] + b',"offset":%d}' % offset if body.endswith(b"}") else None


def utf8_cut(data: bytes, at: int, floor: int) -> int:
    """An index near at (not below floor) that does not cut a UTF-8 character in two."""
    cut = at
    while cut > floor + 1 and cut > at - 3 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if (data[cut] & 0xC0) != 0x80 else at


def split_lines(data: bytes, base: int) -> Tuple[List[Tuple[int, int, bytes, bool, bool]], int]:
    """Complete lines in data read at offset base -> [(start, end, line, piece, ends line)], bytes
    used. A partial last line is left for later; a line over 64 KiB is cut into pieces (marked
    split but the last) at character boundaries."""
    lines = []
    pos = 0
    in_long_line = False
    while pos < len(data):
        nl = data.find(b"\n", pos, pos + MAX_LINE_BYTES + 1)
        if nl == -1:
            if len(data) - pos <= MAX_LINE_BYTES:
                break
            cut = utf8_cut(data, pos + MAX_LINE_BYTES, pos)
            lines.append((base + pos, base + cut, data[pos:cut], True, False))
            pos, in_long_line = cut, True
            continue
        lines.append((base + pos, base + nl + 1, data[pos:nl], in_long_line, True))
        pos, in_long_line = nl + 1, False
    return lines, pos


def encode_within(raw: bytes, start: int, end: int, piece: bool, split: bool, now_iso: str, budget: int) -> List[Tuple[int, int, bytes]]:
    """The records for one line, each at most budget bytes: a line whose record would not fit in
    a frame (control characters take 6 bytes each) is cut again, in marked pieces."""
    record = encode_log_line(raw, start, piece, split, now_iso)
    if len(record) <= budget or len(raw) < 8:
        return [(start, end, record)]
    cut = utf8_cut(raw, len(raw) // 2, 0)
    return (encode_within(raw[:cut], start, start + cut, True, True, now_iso, budget)
            + encode_within(raw[cut:], start + cut, end, True, split, now_iso, budget))


def add_lines(stream: LogStream, pieces: List[Tuple[int, int, bytes, bool, bool]], lines: int, now: float, now_iso: str, budget: int) -> int:
    """Adds the records of split_lines' pieces to a stream; returns the line count after them.
    Positions are (byte offset, lines before it): a line cut in pieces counts once, at its end."""
    for start, end, raw, piece, ends_line in pieces:
        plain = None if piece else plain_record(raw, start)  # the common case, kept short
        if plain is not None and len(plain) <= budget:
            stream.add((start, lines), (end, lines + 1), plain, now)
            lines += 1
            continue
        for first, last, record in encode_within(raw, start, end, piece, piece and not ends_line, now_iso, budget):
            begin = (first, lines)
            if ends_line and last == end:
                lines += 1
            stream.add(begin, (last, lines), record, now)
    return lines


def parse_status_uids(text: str) -> List[int]:
    """/proc/<pid>/status -> [real, effective, saved, filesystem] uids."""
    for line in text.splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:5]]
    return []


def parse_passwd_uids(text: str) -> Dict[str, int]:
    """/etc/passwd -> {user name: uid}; lines that are not name:x:uid:... are skipped."""
    uids: Dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and fields[2].isdigit():
            uids.setdefault(fields[0], int(fields[2]))
    return uids


def owner_name(uid: int, user_uids: Dict[str, int]) -> Optional[str]:
    """The first name a passwd gives this uid, or None."""
    return next((name for name, known in user_uids.items() if known == uid), None)


def judge_trust(file_uid: int, header: Dict[str, Any], pid_uids: Optional[List[int]], user_uids: Dict[str, int]) -> str:
    """Why a log file may not speak for the demo its header describes ("" when it may): its owner
    must be root, or the user the header names (its uid, or without one its name in the demo's own
    passwd) and the user the demo's process runs as."""
    if file_uid == 0:
        return ""
    if "uid" in header and header["uid"] != file_uid:
        return "the file belongs to uid %d but its header claims uid %d" % (file_uid, header["uid"])
    if "uid" not in header and "user" in header and user_uids.get(header["user"]) != file_uid:
        claimed = user_uids.get(header["user"])
        who = "user %s (uid %d)" % (header["user"], claimed) if claimed is not None else "user %s, unknown here" % header["user"]
        return "the file belongs to uid %d but its header claims %s" % (file_uid, who)
    if pid_uids and file_uid not in pid_uids:
        return "the file belongs to uid %d but process %d runs as uid %d" % (file_uid, header["pid"], pid_uids[0])
    return ""


def start_position(saved: Optional[List[Any]], header: Dict[str, Any], header_end: int) -> Tuple[int, int]:
    """Where reading a generation starts, as (byte offset, lines before it in all generations):
    the saved position for the generation the agent stopped in, else its first record."""
    generation = header.get("generation", 0)
    if saved and saved[0] == generation:
        return max(saved[1], header_end), saved[2]
    return header_end, header.get("records_before", saved[2] if saved else 0)


def lost_lines_message(lost: int, first: int, last: int) -> str:
    if first == last:
        return "{:,} lines lost: generation {} was deleted before it was read".format(lost, first)
    return "{:,} lines lost: generations {} to {} were deleted before they were read".format(lost, first, last)


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
        return str(parse_json(body.decode("utf-8")).get("Name", "")).lstrip("/") or None
    except (OSError, ValueError, AttributeError):
        return None
    finally:
        client.close()


def demo_state_messages(demos: List[Dict[str, Any]], full: bool, limit: int) -> List[bytes]:
    """demo.state frames under the limit. A full table that does not fit in one frame goes as a
    full frame of short entries (what liveness needs), then the complete entries in parts."""
    single = _demo_state_frame(demos, full)
    if len(single) <= limit and len(demos) <= 4096:
        return [single]
    frames = []
    if full:
        short: List[Dict[str, Any]] = [dict((k, d[k]) for k in SHORT_DEMO_KEYS if k in d) for d in demos]
        frames.append(_demo_state_frame(_fitting(short, limit), True))
    frames.extend(_demo_state_frame(part, False) for part in _parts(demos, limit))
    return frames


SHORT_DEMO_KEYS = ("token", "demo", "pid", "alive", "start_time", "file_uid", "trusted")


def _demo_state_frame(demos: List[Dict[str, Any]], full: bool) -> bytes:
    return encode_json({"type": "demo.state", "data": {"full": full, "demos": demos}})


def _fitting(demos: List[Dict[str, Any]], limit: int) -> List[Dict[str, Any]]:
    return next(iter(_parts(demos, limit)), [])


def _parts(demos: List[Dict[str, Any]], limit: int) -> List[List[Dict[str, Any]]]:
    """demos cut into lists whose frames stay under limit (and the schema's 4096 items)."""
    room = limit - len(_demo_state_frame([], False))
    parts: List[List[Dict[str, Any]]] = [[]]
    size = 0
    for demo in demos:
        encoded = len(encode_json(demo)) + 1
        if encoded > room:  # a huge command line: the entry goes without it
            demo = dict((k, v) for k, v in demo.items() if k not in ("argv", "executable"))
            encoded = len(encode_json(demo)) + 1
        if parts[-1] and (len(parts[-1]) >= 4096 or size + encoded > room):
            parts.append([])
            size = 0
        parts[-1].append(demo)
        size += encoded
    return [p for p in parts if p]

class Scope(object):
    """Where demo logs live: the host, or one mount namespace (a container, an unshare)."""

    def __init__(self, key: str, log_dir: str, proc_dir: str, pid: Optional[int], passwd_path: str):
        self.key = key
        self.log_dir = log_dir
        self.proc_dir = proc_dir
        self.pid = pid
        # The demo's users: a container names them in its own /etc/passwd.
        self.passwd_path = passwd_path
        self.container: Optional[Dict[str, str]] = None


class LogFile(object):
    """One generation of a demo log file, read through its descriptor; while the descriptor is
    closed (idle file, descriptor budget) it is found again by name, and by inode to be sure.
    A marker stands for generations deleted before they were read: one record, no file."""

    def __init__(self, group: LogGroup, path: Optional[str], identity: Tuple[int, int, int], header: Dict[str, Any],
                 position: Tuple[int, int], meter: List[int]):
        self.group = group
        self.path = path  # None once its name is gone (deleted, or renamed where no scan saw it)
        self.fd: Optional[int] = None
        self.dev, self.ino, self.uid = identity
        self.header = header
        self.generation: int = header.get("generation", 0)
        self.rotated = False
        self.trusted = True
        self.owner_name: Optional[str] = None  # the file owner's name in the demo's passwd
        self.size_seen = 0
        self.active_at = time.monotonic()
        self.marker: Optional[Tuple[Tuple[int, int], Tuple[int, int], bytes]] = None  # (start, end, record)
        self.stream = LogStream(position, self.describe, meter)
        self.stream.owner = self

    def describe(self, start: Tuple[int, int], end: Tuple[int, int]) -> Dict[str, Any]:
        return {"token": self.group.token, "demo": self.header.get("demo") or self.group.token, "file_generation": self.generation,
                "start_offset": start[0], "end_offset": end[0]}


class LogGroup(object):
    """Every generation of one demo log (one token in one scope), read oldest first."""

    def __init__(self, scope: Scope, token: str, saved: Optional[List[Any]]):
        self.key = "%s/%s" % (scope.key, token)
        self.scope = scope
        self.token = token
        self.files: Dict[int, LogFile] = {}
        # Acknowledged up to [generation, byte offset (0: its first record), lines before that
        # point in all generations, owner uid]; persisted, so a restart resumes there.
        self.saved = saved
        self.owner: Optional[int] = saved[3] if saved else None
        self.missing_scans = 0

    def current(self) -> Optional[LogFile]:
        return self.files[min(self.files)] if self.files else None

    def newest(self) -> Optional[LogFile]:
        real = [g for g, f in self.files.items() if f.marker is None]
        return self.files[max(real)] if real else None


class DemoLogs(Feature):
    """Finds demo log files on the host and in containers, ships their records exactly once
    (the server keeps one record per token, generation and byte offset) and reports whether each
    demo process is alive. Every file is untrusted input: whatever one holds, only that file is
    skipped (and reported once in agent.status), never the loop."""

    def __init__(self, agent: Agent):
        Feature.__init__(self, agent)
        config = agent.config
        self.proc_root = config.proc_root
        self.log_dir = config.log_dir
        self.shipper = LogShipper(agent, "demo.logs", "d")
        self.meter = [0]  # bytes read and not yet sent, all files together
        self.groups: Dict[str, LogGroup] = {}
        self.by_path: Dict[str, LogFile] = {}
        self.by_inode: Dict[Tuple[int, int], LogFile] = {}
        self.skipped: Dict[str, Tuple[int, int, int, int]] = {}  # path -> (dev, ino, size, mtime) when refused
        self.open_lru: OrderedDict[LogFile, None] = OrderedDict()  # open files, least recently active first
        self.to_read: set = set()
        self.busy: set = set()  # files with records pending or in flight
        self.dirty: set = set()  # paths whose name changed (inotify)
        self.recheck_all = True
        self.max_open = descriptor_budget(config.max_open_log_files)
        self.state_path = os.path.join(config.state_dir, "demo-log-state.json")
        self.saved: Dict[str, List[Any]] = self._load_state()
        self.saved_dirty = False
        self.saved_at = 0.0
        self.demos: Dict[str, Dict[str, Any]] = {}
        self.dying: Dict[str, Tuple[float, str]] = {}  # token -> when its process was first seen gone (monotonic, ISO)
        self.full_state_asked_at: Optional[float] = None  # when the connection that needs the full table came (monotonic)
        self.known_scopes: List[Scope] = []
        self.scope_by_dir: Dict[str, Scope] = {}
        self.container_names: Dict[str, Optional[str]] = {}
        self.own_mnt = readlink(os.path.join(self.proc_root, "self/ns/mnt"))
        self.inotify = Inotify.create()
        self.rotated_grace_s = ROTATED_GRACE_S

    def capabilities(self) -> List[str]:
        return ["demo-logs"]

    def workers(self) -> Dict[str, Callable[[], None]]:
        return {"demo-logs": self.run}

    def status(self, data: Dict[str, Any]) -> None:
        data["log_files"] = {"followed": len(self.by_path), "open": len(self.open_lru), "max_open": self.max_open,
                             "skipped": len(self.skipped), "buffered_bytes": max(0, self.meter[0]),
                             "max_buffered_bytes": self.agent.config.log_buffer_max_bytes}

    # ---- the loop

    def run(self) -> None:
        next_scan = next_liveness = 0.0
        while not self.agent.stop_event.is_set():
            now = time.monotonic()
            scan, liveness = now >= next_scan, now >= next_liveness
            if scan:
                next_scan = now + SCAN_INTERVAL_S
            if liveness:
                next_liveness = now + LIVENESS_INTERVAL_S
            backlog = self.step(scan, liveness) >= self.agent.config.log_batch_max_records
            self._wait(min(self._next_deadline(), next_liveness - time.monotonic()))
            if not backlog:
                self.agent.stop_event.wait(max(0.0, now + ROUND_S - time.monotonic()))
        self.save_state(force=True)

    def step(self, scan: bool = True, liveness: bool = True) -> int:
        """One round: answers, directory events, discovery, liveness, reading and sending.
        Returns how many records were read."""
        self.apply_inbox()
        if self.inotify:
            self.on_events(self.inotify.read_events())
        if self.dirty:
            self.recheck()
        if scan:
            self.scan()
        if liveness:
            self.check_liveness()
        elif self.dying:  # a demo gone is told as soon as its last lines are acknowledged
            self.check_liveness(only=set(self.dying))
        self.send_full_state()
        total = 0
        for _ in range(100):  # bounded: the answers of the server are looked at in between
            read = self.read_all()
            total += read
            if not self.flush() and not read:
                break
        for stream in self.shipper.expire([f.stream for f in self.busy], time.monotonic()):
            self.to_read.add(stream.owner)  # read again from the batch nobody answered
        self.save_state()
        return total

    def _next_deadline(self) -> float:
        """Seconds until a waiting batch is due (Nagle delay, nack backoff, ack timeout)."""
        if not self.agent.connected.is_set():
            return SCAN_INTERVAL_S
        now = time.monotonic()
        delay = self.agent.config.log_batch_max_delay_ms / 1000.0
        due = SCAN_INTERVAL_S
        for f in self.busy:
            stream = f.stream
            if stream.pending and len(stream.in_flight) < MAX_IN_FLIGHT:
                due = min(due, max(stream.retry_at, stream.pending_since + delay if stream.in_flight else 0) - now)
            if stream.in_flight:
                due = min(due, stream.in_flight[0][3] + self.agent.config.log_answer_timeout_s - now)
        return max(0.0, due)

    def _wait(self, timeout: float) -> None:
        """Until an answer arrives, a log directory changes, or timeout."""
        self.shipper.inbox.wait(max(0.0, timeout), [self.inotify.fd] if self.inotify else [])

    def on_events(self, events: List[Tuple[str, int]]) -> None:
        for path, mask in events:
            if mask & Inotify.IN_Q_OVERFLOW:
                self.recheck_all = True
                continue
            known = self.by_path.get(path)
            if known is not None and not mask & Inotify.NAME_CHANGES:
                self.to_read.add(known)
            else:
                self.dirty.add(path)

    def apply_inbox(self) -> None:
        now = time.monotonic()
        for item in self.shipper.inbox.take():
            if item == "connected":
                self.full_state_asked_at = now  # sent once this round has looked at the demos (send_full_state)
                # Nothing could be acknowledged while away: each death waits its full time from now.
                self.dying = {token: (now, exited_at) for token, (_, exited_at) in self.dying.items()}
            elif item == "disconnected":
                self.full_state_asked_at = None
                self.shipper.disconnected([f.stream for f in self.busy])
                self.to_read.update(self.busy)
            else:
                stream = self.shipper.apply(item, now)
                if stream is not None:
                    self._answered(stream.owner)

    def _answered(self, f: LogFile) -> None:
        """A batch of f was answered: its acknowledged position is saved, reading goes on."""
        group = f.group
        if f.marker is None and group.files.get(f.generation) is f and (group.saved is None or group.saved[0] <= f.generation):
            offset, lines = f.stream.acked
            group.saved = [f.generation, offset, lines, group.owner]
            self.saved_dirty = True
        if f.stream.settled():
            self.busy.discard(f)
        self.to_read.add(f)
        self._settle(group)

    # ---- discovery

    def scopes(self) -> List[Scope]:
        """The host, plus one scope per mount namespace other than ours (its lowest pid)."""
        found = [Scope("host", self.log_dir, self.proc_root, None, os.path.join(self.agent.config.etc_root, "passwd"))]
        if not self.agent.config.container_logs:
            return found
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
            scope = Scope("mnt:" + mnt[5:-1], os.path.join(root, self.log_dir.lstrip("/")), os.path.join(root, "proc"), pid,
                          os.path.join(root, "etc/passwd"))
            scope.container = self._container(pid)
            found.append(scope)
        return found

    def _container(self, pid: int) -> Dict[str, str]:
        found = container_from_cgroup(read_optional(os.path.join(self.proc_root, str(pid), "cgroup")))
        if found is None:
            return {"id": (readlink(os.path.join(self.proc_root, str(pid), "ns/mnt")) or "")[:128], "runtime": "namespace",
                    "name": read_optional(os.path.join(self.proc_root, str(pid), "comm")).strip()[:256]}
        if found["runtime"] in ("docker", "podman"):
            if found["id"] not in self.container_names:
                self.container_names[found["id"]] = docker_container_name(self.agent.config.docker_socket, found["id"])
            name = self.container_names[found["id"]]
            if name:
                found["name"] = name[:256]
        return found

    def scan(self) -> None:
        """Lists every log directory: follows new files, notices renamed and deleted ones."""
        self.known_scopes = self.scopes()
        self.scope_by_dir = dict((s.log_dir, s) for s in self.known_scopes)
        if self.inotify:
            self.inotify.watch_only([s.log_dir for s in self.known_scopes])
        recheck, self.recheck_all = self.recheck_all or not self.inotify, False
        listed: set = set()
        listed_dirs: set = set()
        for scope in self.known_scopes:
            try:
                names = os.listdir(scope.log_dir)
            except OSError:
                continue
            listed_dirs.add(scope.log_dir)
            for name in names:
                parsed = parse_log_name(name)
                if parsed is None:
                    continue
                path = os.path.join(scope.log_dir, name)
                listed.add(path)
                if recheck or (path not in self.by_path and path not in self.skipped):
                    self._examine_safely(scope, path, parsed)
        self._forget_unlisted(listed, listed_dirs)
        self._close_idle()
        for group in list(self.groups.values()):
            self._settle_or_forget(group)

    def recheck(self) -> None:
        """Looks again at the names inotify reported created, renamed or deleted."""
        paths, self.dirty = self.dirty, set()
        for path in paths:
            scope = self.scope_by_dir.get(os.path.dirname(path))
            parsed = parse_log_name(os.path.basename(path))
            if scope is not None and parsed is not None:
                self._examine_safely(scope, path, parsed)
        for group in set(self.by_path[p].group for p in paths if p in self.by_path):
            self._settle(group)

    def _examine_safely(self, scope: Scope, path: str, parsed: Tuple[str, Optional[int]]) -> None:
        try:
            self._examine(scope, path, parsed)
        except Exception as e:  # whatever a file does, only that file is skipped
            known = self.by_path.get(path)
            if known is not None:
                self._drop(known)
            self._skip(path, (0, 0, 0, 0), "log_file.error", "%s: %s (%s)" % (type(e).__name__, e, _where(e)))

    def _examine(self, scope: Scope, path: str, parsed: Tuple[str, Optional[int]]) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:  # gone since the listing
            self._gone(path)
            return
        known = self.by_path.get(path)
        if known is not None:
            if (known.dev, known.ino) == (st.st_dev, st.st_ino):
                if st.st_size != known.size_seen:
                    self.to_read.add(known)
                return
            self._unname(known)  # the name is another file's now (a rotation)
        moved = self.by_inode.get((st.st_dev, st.st_ino))
        if moved is not None:  # a file we follow, renamed: rotated
            self._rename(moved, path, parsed[1])
            return
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if self.skipped.get(path) == identity:
            return  # refused before and unchanged since
        self.skipped.pop(path, None)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in FILE_KINDS if test(st.st_mode)), "not a regular file")
            self._skip(path, identity, "log_file.not_regular", "not followed: it is %s" % kind)
        elif len(self.by_path) + len(self.skipped) >= self.agent.config.max_log_files:
            self.agent.problems.report("log_files.too_many", "more than %d demo log files: the others are not followed" % self.agent.config.max_log_files)
        elif self._make_room(None):
            self._open_new(scope, path, parsed, st, identity)

    def _open_new(self, scope: Scope, path: str, parsed: Tuple[str, Optional[int]], st: Any, identity: Tuple[int, int, int, int]) -> None:
        try:
            fd = os.open(path, OPEN_FLAGS)
        except FileNotFoundError:
            return
        except OSError as e:
            self._skip(path, identity, "log_file.unreadable", "cannot open it: %s" % (e.strerror or e))
            return
        try:
            followed = self._check_new(scope, path, parsed, fd, st, identity)
        except BaseException:
            os.close(fd)
            raise
        if not followed:
            os.close(fd)

    def _check_new(self, scope: Scope, path: str, parsed: Tuple[str, Optional[int]], fd: int, st: Any, identity: Tuple[int, int, int, int]) -> bool:
        """Follows a new file (and keeps fd) when it is a regular file with a valid header."""
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            return False  # replaced between lstat and open: the next scan looks again
        head = os.pread(fd, MAX_HEADER_BYTES + 1, 0)
        end = head.find(b"\n")
        if end < 0:
            if len(head) > MAX_HEADER_BYTES:
                self._skip(path, identity, "log_file.header_too_long", "its first line is over %d bytes: not a demo log header" % MAX_HEADER_BYTES)
            else:
                self.skipped[path] = identity  # the header is still being written: looked at again once it changes
            return False
        header, problem = parse_log_header(head[:end])
        problem = problem or self._name_problem(header or {}, parsed)
        if header is None or problem:
            self._skip(path, identity, "log_file.bad_header", problem)
            return False
        return self._accept(scope, path, parsed, fd, opened, header, end + 1, identity)

    @staticmethod
    def _name_problem(header: Dict[str, Any], parsed: Tuple[str, Optional[int]]) -> str:
        token, suffix = parsed
        if header.get("token", token) != token:
            return "its header names token %s, not the one in its name" % header["token"]
        if suffix not in (None, 1, header.get("generation", 0)):  # .1: the name an older library gave every rotated file
            return "its name says generation %d but its header says %d" % (suffix, header.get("generation", 0))
        return ""

    def _accept(self, scope: Scope, path: str, parsed: Tuple[str, Optional[int]], fd: int, st: Any, header: Dict[str, Any],
                header_end: int, identity: Tuple[int, int, int, int]) -> bool:
        """Adds a file with a valid header to its demo log, unless it does not belong there."""
        token, suffix = parsed
        key = "%s/%s" % (scope.key, token)
        group = self.groups.get(key) or LogGroup(scope, token, self.saved.get(key))
        untrusted = self._refusal(group, path, suffix, st, header, identity)
        if untrusted is None:
            return False
        self.groups[key] = group
        position = start_position(group.saved, header, header_end)
        f = LogFile(group, path, (st.st_dev, st.st_ino, st.st_uid), header, position, self.meter)
        f.fd, f.rotated, f.trusted = fd, suffix is not None, not untrusted
        f.owner_name = owner_name(st.st_uid, parse_passwd_uids(read_optional(scope.passwd_path)))
        if group.owner is None and st.st_uid != 0:
            group.owner = st.st_uid
        group.files[f.generation] = f
        group.missing_scans = 0
        self.by_path[path] = f
        self.by_inode[(f.dev, f.ino)] = f
        self.open_lru[f] = None
        self.to_read.add(f)
        return True

    def _refusal(self, group: LogGroup, path: str, suffix: Optional[int], st: Any, header: Dict[str, Any],
                 identity: Tuple[int, int, int, int]) -> Optional[str]:
        """None when the file is not followed (skipped, or finished already), else why it is
        untrusted ("" when it is trusted)."""
        generation = header.get("generation", 0)
        if group.owner is not None and st.st_uid not in (0, group.owner):
            self._skip(path, identity, "log_file.owner_mismatch", "it belongs to uid %d, the other files of this demo log to uid %d" % (st.st_uid, group.owner))
            return None
        if generation in group.files:
            self._skip(path, identity, "log_file.duplicate_generation", "generation %d of this demo log is followed already" % generation)
            return None
        if group.saved and generation < group.saved[0]:
            if suffix is not None and not self.saved_dirty:  # acknowledged to its end, as the state on disk says
                self._delete(path, st.st_dev, st.st_ino)
            return None
        untrusted = self._trust_problem(group.scope, st.st_uid, header)
        if untrusted and self.agent.config.untrusted_log_files == "ignore":
            self._skip(path, identity, "log_file.untrusted", untrusted + ": ignored (untrusted_log_files)")
            return None
        if untrusted:
            self.agent.problems.report("log_file.untrusted", untrusted + ": its demo is shown as untrusted", path)
        return untrusted

    def _trust_problem(self, scope: Scope, file_uid: int, header: Dict[str, Any]) -> str:
        """judge_trust with the uids of the header's process, when that process is the demo."""
        proc = os.path.join(scope.proc_dir, str(header["pid"]))
        stat_text = read_optional(os.path.join(proc, "stat"))
        same = bool(stat_text) and header.get("start_time", _safe_start_time(stat_text)) == _safe_start_time(stat_text)
        pid_uids = parse_status_uids(read_optional(os.path.join(proc, "status"))) if same else None
        return judge_trust(file_uid, header, pid_uids, parse_passwd_uids(read_optional(scope.passwd_path)))

    def _skip(self, path: str, identity: Tuple[int, int, int, int], code: str, message: str) -> None:
        self.skipped[path] = identity
        self.agent.problems.report(code, message, path)

    def _rename(self, f: LogFile, path: str, suffix: Optional[int]) -> None:
        if f.path is not None and self.by_path.get(f.path) is f:
            del self.by_path[f.path]
        f.path = path
        f.rotated = f.rotated or suffix is not None
        self.by_path[path] = f

    def _unname(self, f: LogFile) -> None:
        """f's name is gone: it is read on through its descriptor, or dropped without one."""
        if f.path is not None and self.by_path.get(f.path) is f:
            del self.by_path[f.path]
            self.agent.problems.clear(f.path)
        f.path = None
        if f.fd is None:
            self._drop(f)

    def _gone(self, path: str) -> None:
        known = self.by_path.get(path)
        if known is not None:
            self._unname(known)
        if self.skipped.pop(path, None) is not None:
            self.agent.problems.clear(path)

    def _forget_unlisted(self, listed: set, listed_dirs: set) -> None:
        for path in [p for p in self.by_path if p not in listed and os.path.dirname(p) in listed_dirs]:
            self._unname(self.by_path[path])
        for path in [p for p in self.skipped if p not in listed]:
            del self.skipped[path]
            self.agent.problems.clear(path)

    # ---- descriptors

    def _make_room(self, keep: Optional[LogFile]) -> bool:
        """True when one more file may be opened, closing the least recently active if needed."""
        while len(self.open_lru) >= self.max_open:
            victim = next((f for f in self.open_lru if f.path is not None and f is not keep), None)
            if victim is None:
                self.agent.problems.report("log_files.too_many_open", "%d log files are open and none can be closed" % len(self.open_lru))
                return False
            self._close(victim)
        return True

    def _reopen(self, f: LogFile) -> bool:
        """Opens f again by its name, if that name is still the same file (device and inode)."""
        if f.path is None or not self._make_room(f):
            return False
        try:
            fd = os.open(f.path, OPEN_FLAGS)
        except OSError:
            self._unname(f)
            return False
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (f.dev, f.ino):
            os.close(fd)
            self._unname(f)
            return False
        f.fd = fd
        self.open_lru[f] = None
        return True

    def _close(self, f: LogFile) -> None:
        if f.fd is not None:
            os.close(f.fd)
            f.fd = None
        self.open_lru.pop(f, None)

    def _close_idle(self) -> None:
        """Gives back the descriptors of files nobody wrote to for a while (they are found again
        by name when they change)."""
        now = time.monotonic()
        for f in list(self.open_lru):
            if now - f.active_at < IDLE_CLOSE_S:
                break
            if f.path is not None and f not in self.to_read:
                self._close(f)

    def _drop(self, f: LogFile) -> None:
        """Stops following f (gone, finished or failed)."""
        self._close(f)
        if f.path is not None and self.by_path.get(f.path) is f:
            del self.by_path[f.path]
        if self.by_inode.get((f.dev, f.ino)) is f:
            del self.by_inode[(f.dev, f.ino)]
        if f.group.files.get(f.generation) is f:
            del f.group.files[f.generation]
        self.shipper.forget([b[0] for b in f.stream.in_flight])
        self.meter[0] -= f.stream.pending_bytes
        f.stream.pending, f.stream.pending_bytes, f.stream.in_flight = [], 0, []
        self.to_read.discard(f)
        self.busy.discard(f)

    # ---- reading and shipping

    def read_all(self) -> int:
        """Reads the files with news, each demo log's oldest generation only: a newer one waits
        until the older is read to its end and acknowledged, so lines keep their order. Returns
        how many records were read (or generations finished)."""
        now, now_iso, budget = time.monotonic(), iso_time(), self.agent.frame_budget()
        progress = 0
        for f in list(self.to_read):
            if f.group.current() is not f:
                self.to_read.discard(f)
                continue
            pending = len(f.stream.pending)
            try:
                self._read(f, now, now_iso, budget)
            except Exception as e:  # a file the agent cannot read stops being followed, alone
                self._fail(f, e)
                continue
            progress += len(f.stream.pending) - pending
            if f not in self.to_read and f.stream.settled() and self._rotated(f):
                self._settle(f.group)  # read to its end and acknowledged: the next generation's turn
                progress += f.group.current() is not f
        return progress
    def _read(self, f: LogFile, now: float, now_iso: str, budget: int) -> None:
        stream = f.stream
        if f.marker is not None:
            if stream.read_position == f.marker[0] and not stream.in_flight:
                stream.add(f.marker[0], f.marker[1], f.marker[2], now)
                self.busy.add(f)
            self.to_read.discard(f)
            return
        if stream.pending_bytes >= budget or self.meter[0] >= self.agent.config.log_buffer_max_bytes:
            return  # memory cap: read on once batches went out (the rest waits in the file)
        if f.fd is None and not self._reopen(f):
            self.to_read.discard(f)
            return
        assert f.fd is not None
        offset, lines = stream.read_position
        data = os.pread(f.fd, READ_CHUNK_BYTES, offset)
        if offset + len(data) > f.size_seen:
            f.size_seen, f.active_at = offset + len(data), now
            self.open_lru.move_to_end(f)
        pieces, used = split_lines(data, offset)
        lines = add_lines(stream, pieces, lines, now, now_iso, budget)
        if len(data) < READ_CHUNK_BYTES:  # the end of what is written
            self._at_end(f, data[used:], offset + used, lines, now, now_iso, budget)
        if stream.pending:
            self.busy.add(f)

    def _at_end(self, f: LogFile, rest: bytes, start: int, lines: int, now: float, now_iso: str, budget: int) -> None:
        """Nothing more to read for now; a rotated file's unfinished last line (nobody will
        finish it) goes as it is once the file stayed quiet a moment."""
        if rest and self._rotated(f) and now - f.active_at >= self.rotated_grace_s:
            for first, last, record in encode_within(rest, start, start + len(rest), True, False, now_iso, budget):
                f.stream.add((first, lines), (last, lines), record, now)
        else:
            self.to_read.discard(f)

    def _fail(self, f: LogFile, error: Exception) -> None:
        path = f.path or "%s (deleted)" % f.group.key
        self._drop(f)
        self._skip(path, (f.dev, f.ino, f.size_seen, 0), "log_file.error", "%s: %s (%s)" % (type(error).__name__, error, _where(error)))

    def flush(self) -> int:
        """Sends the batches that are due; returns how many went out."""
        return self.shipper.flush([f.stream for f in self.busy], time.monotonic())

    def _rotated(self, f: LogFile) -> bool:
        return f.rotated or f.path is None or max(f.group.files) > f.generation

    # ---- generations: finished, deleted, lost

    def _settle_or_forget(self, group: LogGroup) -> None:
        """Forgets a demo log none of whose files is left to read (after a few scans, so that a
        rotation seen half-way is not taken for the end); settles the others."""
        active = any(f.path is not None or f.marker is not None or f in self.to_read or not f.stream.settled() for f in group.files.values())
        group.missing_scans = 0 if active else group.missing_scans + 1
        if group.missing_scans < MISSING_SCANS:
            self._settle(group)
            return
        for f in list(group.files.values()):
            self._drop(f)
        self.groups.pop(group.key, None)
        if self.saved.pop(group.key, None) is not None:
            self.saved_dirty = True

    def _settle(self, group: LogGroup) -> None:
        """Moves a demo log on: reports generations deleted before they were read, and finishes
        (deletes) rotated generations once every line of them is acknowledged."""
        for _ in range(len(group.files) + 8):  # bounded: each turn removes or adds one generation
            f = group.current()
            if f is None:
                return
            if self._lost_before(group, f):
                continue
            if not self._finished(f):
                if self._rotated(f):
                    self.to_read.add(f)  # its unfinished last line is shipped after a grace time
                return
            self._finish(f)

    def _lost_before(self, group: LogGroup, f: LogFile) -> bool:
        """When the generation the agent is at is gone and a later one is here, the lines between
        were lost (the library deletes old generations when the agent falls behind): one marker
        record says how many, in the lost generation's stream, where reading stopped. True when
        the demo log moved on (the next turn looks again)."""
        expected = group.saved[0] if group.saved else 0
        if f.generation <= expected or f.marker is not None or self._look_for(group, expected, f):
            return False
        lines_before = group.saved[2] if group.saved else 0
        records_before = f.header.get("records_before")
        if records_before is None:
            self.agent.problems.report("log_file.lines_lost", "lines lost: generations %d to %d were deleted before they were read "
                                       "(how many is unknown: written by an older library)" % (expected, f.generation - 1), group.key)
        if records_before is None or records_before <= lines_before:
            # Nothing to count, or every line was read already (only the end of the file was not seen).
            group.saved = [f.generation, 0, max(lines_before, records_before or 0), group.owner]
            self.saved_dirty = True
            return True
        self._add_marker(group, expected, f, lines_before, records_before)
        return True

    def _add_marker(self, group: LogGroup, generation: int, later: LogFile, lines_before: int, records_before: int) -> None:
        """The lost_lines record, as the only content of the missing generation."""
        offset = group.saved[1] if group.saved and group.saved[0] == generation else 0
        message = lost_lines_message(records_before - lines_before, generation, later.generation - 1)
        self.agent.problems.report("log_file.lines_lost", message, group.key)
        record = encode_json({"ts": iso_time(), "level": "WARN", "message": message, "offset": offset, "lost_lines": records_before - lines_before})
        marker = LogFile(group, None, (0, 0, later.uid), dict(later.header, generation=generation), (offset, lines_before), self.meter)
        marker.marker = ((offset, lines_before), (offset, records_before), record)
        group.files[generation] = marker
        self.to_read.add(marker)

    def _look_for(self, group: LogGroup, generation: int, later: LogFile) -> bool:
        """Whether a generation missing from the last listing is there after all (the listing
        raced a rotation). The names are looked at in the order a rotation renames them."""
        base = os.path.join(group.scope.log_dir, "dvic_log_" + group.token)
        for path, suffix in ((base, None), ("%s.%d" % (base, generation), generation), (base + ".1", 1)):
            if path not in self.by_path:
                self._examine_safely(group.scope, path, (group.token, suffix))
        return group.current() is not later

    def _finished(self, f: LogFile) -> bool:
        """Read to its end, every record acknowledged, and a later generation exists."""
        if not f.stream.settled() or f in self.to_read:
            return False
        if f.marker is not None:
            return f.stream.acked == f.marker[1]
        if not self._rotated(f):
            return False
        try:
            size = os.fstat(f.fd).st_size if f.fd is not None else (os.lstat(f.path).st_size if f.path else f.size_seen)
        except OSError:
            size = f.size_seen
        return f.stream.acked[0] >= size

    def _finish(self, f: LogFile) -> None:
        """Moves the demo log to its next generation, saved first: a crash then leaves at worst a
        finished file the next start deletes, never a deleted file the state still points to."""
        group = f.group
        end = f.marker[1] if f.marker is not None else f.stream.acked
        group.saved = [f.generation + 1, 0, end[1], group.owner]
        self.saved_dirty = True
        saved = self.save_state(force=True)
        path = f.path
        self._drop(f)
        name = parse_log_name(os.path.basename(path)) if path is not None else None
        if saved and path is not None and name is not None and name[1] is not None:
            # Deleted only once the state says so (if it cannot be written, the file stays: a
            # restart reads it again and the server drops what it has).
            self._delete(path, f.dev, f.ino)
        nxt = group.current()
        if nxt is not None:
            self.to_read.add(nxt)

    def _delete(self, path: str, dev: int, ino: int) -> None:
        """Deletes a finished rotated file, as root in a sticky /tmp: only if the name is still
        that regular file (never a symlink, never a file put there since)."""
        try:
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (dev, ino):
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            self.agent.problems.report("log_file.not_deleted", "cannot delete this finished log file: %s" % (e.strerror or e), path)
        self.skipped.pop(path, None)

    # ---- liveness

    def check_liveness(self, only: Optional[Set[str]] = None) -> None:
        """Looks at each demo's process. `only`: the demos whose death waits, looked at every round
        between the full looks (which also forget the demos whose files went away)."""
        changed = []
        current: Dict[str, Tuple[LogGroup, LogFile]] = {}
        for group in self.groups.values():
            if only is not None and group.token not in only:
                continue
            newest = group.newest()
            if newest is not None:
                current[group.token] = (group, newest)
        for token, (group, f) in current.items():
            before = self.demos.get(token)
            if before is not None and not before["alive"] and "start_time" in before and before.get("trusted") == f.trusted and before["pid"] == f.header["pid"]:
                continue  # dead for good: a pid with another start time is another process
            state = self._demo_state(group, f)
            if before is None or before["alive"] != state["alive"] or before["pid"] != state["pid"]:
                if (before is None or before["alive"]) and not state["alive"] and self._tell_death_later(token, f):
                    continue  # first seen gone too: a short demo's closing record goes first
                if before is not None and not state["alive"]:
                    state["exited_at"] = self.dying.get(token, (0.0, iso_time()))[1]
                self.dying.pop(token, None)
                self.demos[token] = state
                changed.append(state)
            else:
                self.dying.pop(token, None)
        if only is None:
            changed.extend(self._forget_gone(current))
        if changed:
            self._send_states(changed, False)

    def _forget_gone(self, current: Dict[str, Tuple[LogGroup, LogFile]]) -> List[Dict[str, Any]]:
        """Forgets the demos whose files went away; those last seen alive, told dead."""
        gone = []
        for token in [t for t in self.demos if t not in current]:
            if self.demos[token]["alive"]:
                # Its file went away with its container or namespace: the demo went with them.
                gone.append(dict(self.demos[token], alive=False, exited_at=self.dying.get(token, (0.0, iso_time()))[1]))
            del self.demos[token]
        for token in [t for t in self.dying if t not in current]:
            del self.dying[token]
        return gone

    def send_full_state(self) -> None:
        """The whole demo table, once per connection. The server judges a live demo the table
        omits as vanished (crashed), so it goes after this round's look at the log directory, and
        after the death of a demo first seen gone (an agent restarted as it exited) is told with its
        closing record: at most DEATH_REPORT_WAIT_S after connecting."""
        if self.full_state_asked_at is None:
            return
        first_seen_gone = any(token not in self.demos for token in self.dying)
        if first_seen_gone and time.monotonic() - self.full_state_asked_at < DEATH_REPORT_WAIT_S:
            return
        self.full_state_asked_at = None
        self._send_states(list(self.demos.values()), True)

    def _tell_death_later(self, token: str, f: LogFile) -> bool:
        """Whether a demo seen gone waits to be reported: its file may still hold lines the
        server has not acknowledged (the closing record its library wrote as it exited, often),
        and for at most DEATH_REPORT_WAIT_S."""
        now = time.monotonic()
        first = self.dying.setdefault(token, (now, iso_time()))[0]
        if not self.agent.connected.is_set():
            return True  # nothing can be acknowledged now; the wait starts again on connecting
        return now - first < DEATH_REPORT_WAIT_S and self._unacknowledged(f)

    def _unacknowledged(self, f: LogFile) -> bool:
        """Lines read and not acknowledged yet, or written past what was read."""
        if f in self.to_read or f in self.busy or not f.stream.settled():
            return True
        try:
            size = os.fstat(f.fd).st_size if f.fd is not None else os.lstat(f.path).st_size if f.path else 0
        except OSError:
            return False
        return size > f.stream.read_position[0]

    def _send_states(self, demos: List[Dict[str, Any]], full: bool) -> None:
        for frame in demo_state_messages(demos, full, self.agent.max_frame_bytes):
            self.agent.send_frame(frame)

    def _demo_state(self, group: LogGroup, f: LogFile) -> Dict[str, Any]:
        header = f.header
        pid = header["pid"]
        stat_text = read_optional(os.path.join(group.scope.proc_dir, str(pid), "stat"))
        alive = bool(stat_text) and ("start_time" not in header or _safe_start_time(stat_text) == header["start_time"])
        state: Dict[str, Any] = {"token": group.token, "demo": header.get("demo") or group.token, "pid": pid, "alive": alive,
                                 "file_uid": f.uid, "trusted": f.trusted}
        for key, out in (("start_time", "start_time"), ("user", "user"), ("uid", "uid"), ("exe", "executable"),
                         ("started_at", "started_at"), ("argv", "argv")):
            if key in header:
                state[out] = header[key]  # the header passed its schema: every value fits demo.state
        owner = f.owner_name
        if f.trusted and f.uid != 0 and owner:
            state["user"] = owner  # the name of the file's owner, never one the header made up
        if group.scope.container:
            state["container"] = group.scope.container
        return state

    def on_connected(self) -> None:
        self.shipper.inbox.put("connected")

    def on_disconnected(self) -> None:
        """Batches in flight may be lost: they are read and sent again (the server drops what
        it already has)."""
        self.shipper.inbox.put("disconnected")

    # ---- state

    def save_state(self, force: bool = False) -> bool:
        """Writes the acknowledged positions (at most once a second unless forced)."""
        now = time.monotonic()
        if not self.saved_dirty or (not force and now - self.saved_at < 1.0):
            return True
        for group in self.groups.values():
            if group.saved is not None:
                self.saved[group.key] = group.saved
        try:
            write_atomic(self.state_path, json.dumps({"version": 2, "groups": self.saved}))
        except OSError as e:
            self.agent.problems.report("state.not_saved", "cannot save log positions to %s: %s" % (self.state_path, e.strerror or e))
            return False
        self.saved_dirty = False
        self.saved_at = now
        return True

    def _load_state(self) -> Dict[str, List[Any]]:
        try:
            groups = parse_json(read_text(self.state_path))["groups"]
            return dict((str(k), [int(v[0]), int(v[1]), int(v[2]), None if v[3] is None else int(v[3])]) for k, v in groups.items())
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            return {}  # none yet (or unreadable): files are read from their start; the server drops duplicates

    def stop(self) -> None:
        self.save_state(force=True)
        for f in list(self.open_lru):
            self._close(f)


def _safe_start_time(stat_text: str) -> Optional[int]:
    try:
        return proc_start_time(stat_text)
    except (ValueError, IndexError):
        return None


def descriptor_budget(configured: int) -> int:
    """How many log files may be open at once: the config's number, within the process's
    descriptor limit minus what the connection, commands and terminals need."""
    import resource
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(4, min(configured, soft - RESERVED_FDS))


class Inotify(object):
    """inotify through ctypes: which names in the log directories changed, and how."""

    IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x2, 0x8, 0x40, 0x80, 0x100, 0x200
    IN_Q_OVERFLOW, IN_IGNORED = 0x4000, 0x8000
    NAME_CHANGES = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    MASK = IN_MODIFY | IN_CLOSE_WRITE | NAME_CHANGES

    def __init__(self, libc: Any, fd: int):
        self.libc = libc
        self.fd = fd
        self.dirs: Dict[int, str] = {}

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

    def watch_only(self, directories: List[str]) -> None:
        """Watches these directories and stops watching the others (gone namespaces)."""
        wanted = set(directories)
        for wd, directory in list(self.dirs.items()):
            if directory not in wanted:
                self.libc.inotify_rm_watch(self.fd, wd)
                del self.dirs[wd]
        watched = set(self.dirs.values())
        for directory in wanted - watched:
            wd = self.libc.inotify_add_watch(self.fd, os.fsencode(directory), self.MASK)
            if wd >= 0:
                self.dirs[wd] = directory

    def read_events(self) -> List[Tuple[str, int]]:
        """(path, mask) of the events waiting; ("", IN_Q_OVERFLOW) when some were lost."""
        events: List[Tuple[str, int]] = []
        for _ in range(64):  # bounded: a busy directory must not keep the loop here
            try:
                data = os.read(self.fd, 65536)
            except (BlockingIOError, InterruptedError):
                break
            events.extend(self.parse(data))
        return events

    def parse(self, data: bytes) -> List[Tuple[str, int]]:
        events = []
        pos = 0
        while pos + 16 <= len(data):
            wd, mask, _cookie, length = struct.unpack_from("iIII", data, pos)
            name = data[pos + 16:pos + 16 + length].split(b"\0", 1)[0]
            pos += 16 + length
            directory = self.dirs.get(wd)
            if mask & self.IN_IGNORED:
                self.dirs.pop(wd, None)
            elif mask & self.IN_Q_OVERFLOW or directory is None:
                events.append(("", self.IN_Q_OVERFLOW))
            elif name:
                events.append((os.path.join(directory, os.fsdecode(name)), mask))
        return events


FEATURES.append(DemoLogs)


##############################################################################
# System logs: the journal (journalctl -o json) or a syslog file, through the same shipper
##############################################################################

SYSTEM_BATCH_DELAY_MS = 1000  # system logs gather up to a second: they are many and rarely urgent
SEVERITY_LEVELS = ("FATAL", "FATAL", "FATAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG")  # syslog/journal 0..7
MONTHS = dict((m, i + 1) for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")))
PRI_RE = re.compile(r"<(\d{1,3})>")
RFC3339_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d{1,9})?(Z|[+-]\d\d:?\d\d)?")
RFC5424_RE = re.compile(r"(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) ?(.*)", re.S)
RFC3164_RE = re.compile(r"([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (.*)", re.S)
TAG_RE = re.compile(r"([^\s\[\]:]{1,64})(?:\[(\d{1,10})\])?: ?(.*)", re.S)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (no calendar module import)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def parse_rfc3339(text: str) -> Optional[float]:
    """An RFC 3339 timestamp -> seconds since the epoch (no zone: UTC)."""
    m = RFC3339_RE.fullmatch(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second + float(m.group(7) or 0)
    zone = m.group(8) or "Z"
    if zone != "Z":
        sign = -1 if zone[0] == "+" else 1
        seconds += sign * (int(zone[1:3]) * 3600 + int(zone[-2:]) * 60)
    return seconds


def parse_rfc3164_time(month: str, day: int, hms: Tuple[int, int, int], now: float) -> Optional[float]:
    """"Nov 25 17:30:00" in local time: the year is this one, or the last when that would be
    in the future (December's lines read in January)."""
    if month not in MONTHS or not 1 <= day <= 31:
        return None
    year = time.localtime(now).tm_year
    for candidate in (year, year - 1):
        try:
            ts = time.mktime((candidate, MONTHS[month], day, hms[0], hms[1], hms[2], 0, 0, -1))
        except (OverflowError, ValueError):
            return None
        if ts <= now + 86400:
            return ts
    return None


def parse_syslog_line(line: str, now: float) -> Dict[str, Any]:
    """A syslog file line -> {ts, level, message[, identifier, pid]}: an optional <PRI> (its
    severity is the level), then RFC 5424, or an RFC 3339 timestamp (rsyslog's default on
    Debian 12) or an RFC 3164 one, and the host. The message keeps "prog[pid]: " in front, as
    syslog shows it. A line in no known shape is kept whole, INFO, at the time it was read."""
    level, rest = "INFO", line
    pri = PRI_RE.match(line)
    if pri and int(pri.group(1)) <= 191:
        level, rest = SEVERITY_LEVELS[int(pri.group(1)) & 7], line[pri.end():]
    m5424 = RFC5424_RE.fullmatch(rest) if pri else None
    if m5424 and (m5424.group(2) == "-" or parse_rfc3339(m5424.group(2)) is not None):
        ts = parse_rfc3339(m5424.group(2))
        app, procid = (v if v != "-" else "" for v in (m5424.group(4), m5424.group(5)))
        return _tagged_record(ts if ts is not None else now, level, app, procid, _after_structured_data(m5424.group(7)))
    first, _, after = rest.partition(" ")
    ts = parse_rfc3339(first)
    if ts is None:
        m3164 = RFC3164_RE.fullmatch(rest)
        if m3164:
            ts = parse_rfc3164_time(m3164.group(1), int(m3164.group(2)), (int(m3164.group(3)), int(m3164.group(4)), int(m3164.group(5))), now)
            after = m3164.group(6)
    if ts is None:
        return _syslog_record(now, level, rest)
    _host, _, message = after.partition(" ")
    tag = TAG_RE.fullmatch(message)
    if tag is None:
        return _syslog_record(ts, level, message)
    return _tagged_record(ts, level, tag.group(1), tag.group(2) or "", tag.group(3))


def _syslog_record(ts: float, level: str, message: str) -> Dict[str, Any]:
    return {"ts": iso_time(ts) if 0 <= ts < 253402300800 else iso_time(), "level": level, "message": message}


def _tagged_record(ts: float, level: str, identifier: str, pid: str, message: str) -> Dict[str, Any]:
    tag = "%s[%s]" % (identifier, pid) if identifier and pid else identifier
    record = _syslog_record(ts, level, "%s: %s" % (tag, message) if tag else message)
    if identifier:
        record["identifier"] = identifier[:256]
    if pid.isdigit() and len(pid) <= 10:
        record["pid"] = int(pid)
    return record


def _after_structured_data(text: str) -> str:
    """The MSG of an RFC 5424 line: what follows "-" or the [structured data] elements."""
    if text.startswith("-"):
        return text[2:].lstrip("\ufeff")
    pos = 0
    while pos < len(text) and text[pos] == "[":
        end = pos + 1
        while end < len(text) and text[end] != "]":
            end += 2 if text[end] == "\\" else 1
        pos = end + 1
    return text[pos + 1:].lstrip("\ufeff") if pos < len(text) else ""


def journal_record(entry: Dict[str, Any]) -> Dict[str, Any]:
    """One `journalctl -o json` entry -> a log record (with its sequence number as offset)."""
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journald sends non-UTF-8 messages as byte arrays
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    try:
        level = SEVERITY_LEVELS[int(entry.get("PRIORITY", 6))]
    except (ValueError, IndexError, TypeError):
        level = "INFO"
    try:
        micros = int(entry.get("__REALTIME_TIMESTAMP", 0) or 0)
    except (ValueError, TypeError):
        micros = 0
    record: Dict[str, Any] = {"ts": iso_time(micros / 1e6) if 0 < micros < 253402300800000000 else iso_time(), "level": level,
                              "message": str(message)[:65536]}
    for key, out in (("_SYSTEMD_UNIT", "unit"), ("SYSLOG_IDENTIFIER", "identifier")):
        if isinstance(entry.get(key), str):
            record[out] = entry[key][:256]
    if str(entry.get("_PID", "")).isdigit() and len(str(entry["_PID"])) <= 10:
        record["pid"] = int(entry["_PID"])
    if str(entry.get("__SEQNUM", "")).isdigit():
        record["offset"] = int(entry["__SEQNUM"])
    return record


def encode_system_record(record: Dict[str, Any], budget: int) -> List[bytes]:
    """A system record as one or more encoded records under budget (its message cut in marked parts)."""
    encoded = encode_json(record)
    if len(encoded) <= budget or len(record["message"]) < 8:
        return [encoded]
    half = len(record["message"]) // 2
    first = dict(record, message=record["message"][:half], split=True)
    rest = dict(record, message=record["message"][half:])
    rest.pop("offset", None)  # one offset per record: the server keeps the first part by it
    return encode_system_record(first, budget) + encode_system_record(rest, budget)


class SyslogSource(object):
    """A syslog file read by inode and offset; after a rotation (a new inode at the path) the
    old file is finished through its descriptor before the new one starts."""

    def __init__(self, feature: SystemLogs, cursor: str):
        self.feature = feature
        self.path = feature.agent.config.syslog_path
        self.fd: Optional[int] = None
        self.inode, offset = _parse_file_cursor(cursor)
        self.position = (self.inode, offset)
        self.renamed_at = 0.0  # when a new file was first seen at the path

    def start_position(self) -> Tuple[int, int]:
        return self.position

    def describe(self, start: Tuple[int, int], end: Tuple[int, int]) -> Dict[str, Any]:
        return {"source": "syslog", "stream": "syslog:%d" % start[0], "cursor": "%d:%d" % end}

    def fds(self) -> List[int]:
        return []  # a regular file is always "readable": it is looked at on a timer

    def seek(self, position: Tuple[int, int]) -> None:
        self.position = position

    def read(self, stream: LogStream, now: float, budget: int) -> None:
        if self.fd is None and not self._open(stream):
            return
        assert self.fd is not None
        inode, offset = self.position
        data = os.pread(self.fd, READ_CHUNK_BYTES, offset)
        lines, used = split_lines(data, offset)
        for start, end, raw, piece, ends_line in lines:
            record = parse_syslog_line(raw.decode("utf-8", "replace"), time.time())
            record["offset"] = start
            if piece and not ends_line:
                record["split"] = True
            for encoded in encode_system_record(record, budget):
                stream.add((inode, start), (inode, end), encoded, now)
        self.position = (inode, offset + used)
        if data:
            self.renamed_at = 0.0
        elif stream.settled():
            self._follow_rotation(now)

    def _open(self, stream: LogStream) -> bool:
        try:
            fd = os.open(self.path, OPEN_FLAGS)
        except OSError as e:
            self.feature.set_status(False, "cannot read %s: %s" % (self.path, e.strerror or e))
            return False
        st = os.fstat(fd)
        self.fd = fd
        if st.st_ino != self.inode or st.st_size < self.position[1]:  # another file, or truncated: from its start
            self.inode, self.position = st.st_ino, (st.st_ino, 0)
            stream.restart(self.position)
        self.feature.set_status(True, "")
        return True

    def _follow_rotation(self, now: float) -> None:
        """At the end of a file everything of which is acknowledged: moves to a new file at the
        path, once the old one stayed quiet a moment (the writer may not have reopened yet)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if st.st_ino == self.inode and st.st_size >= self.position[1]:
            return
        self.renamed_at = self.renamed_at or now
        if now - self.renamed_at >= ROTATED_GRACE_S:
            self.renamed_at = 0.0
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class JournalSource(object):
    """journalctl -o json --follow, started again at a cursor whenever reading must go back."""

    def __init__(self, feature: SystemLogs, position: Tuple[str, str, str]):
        self.feature = feature
        self.position = position  # ("after" | "at" | "new", cursor, sequence number id)
        self.process: Optional[Tuple[int, int, int]] = None  # journalctl: (pid, stdout, stderr)
        self.buffered = b""
        self.errors = b""
        self.stderr_open = False
        self.held: Optional[Dict[str, Any]] = None  # an entry of another sequence space, waiting
        self.restart_at = 0.0
        self.failures = 0

    def describe(self, start: Tuple[str, str, str], end: Tuple[str, str, str]) -> Dict[str, Any]:
        return {"source": "journal", "stream": "journal:%s" % end[2], "cursor": end[1]}

    def fds(self) -> List[int]:
        if self.process is None:
            return []
        return [self.process[1]] + ([self.process[2]] if self.stderr_open else [])

    def seek(self, position: Tuple[str, str, str]) -> None:
        self.close()
        self.position = position

    def read(self, stream: LogStream, now: float, budget: int) -> None:
        if self.process is None and not self._start(now):
            return
        self._read_errors()
        for entry in self._entries():
            if stream.pending and entry.get("__SEQNUM_ID") != stream.pending[0][1][2]:
                self.held = entry  # one sequence space (one offset space) per batch
                return
            self._add(stream, entry, now, budget)

    def _entries(self) -> List[Dict[str, Any]]:
        assert self.process is not None
        entries = [self.held] if self.held else []
        self.held = None
        try:
            chunk = os.read(self.process[1], 256 * 1024)
        except BlockingIOError:
            chunk = None
        if chunk == b"":
            self._ended()
            return entries
        lines = (self.buffered + (chunk or b"")).split(b"\n")
        self.buffered = lines.pop()
        for line in lines:
            try:
                entry = parse_json(line.decode("utf-8", "replace"))
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("__CURSOR"), str):
                entries.append(entry)
        return entries

    def _add(self, stream: LogStream, entry: Dict[str, Any], now: float, budget: int) -> None:
        cursor, seq_id = entry["__CURSOR"][:1024], str(entry.get("__SEQNUM_ID", ""))[:200]
        for encoded in encode_system_record(journal_record(entry), budget):
            stream.add(("at", cursor, seq_id), ("after", cursor, seq_id), encoded, now)
        self.position = ("after", cursor, seq_id)
        self.failures = 0
        self.feature.set_status(True, "")

    def _start(self, now: float) -> bool:
        if now < self.restart_at:
            return False
        kind, cursor, _ = self.position
        args = [self.feature.agent.config.journalctl, "-o", "json", "--follow", "--no-pager"]
        args += {"after": ["--after-cursor", cursor], "at": ["--cursor", cursor]}.get(kind, ["--lines", "0"])
        try:
            self.process = spawn_reading(args)
        except OSError as e:
            self._failed(now, "cannot run %s: %s" % (args[0], e.strerror or e))
            return False
        os.set_blocking(self.process[1], False)
        os.set_blocking(self.process[2], False)
        self.buffered, self.errors, self.stderr_open = b"", b"", True
        return True

    def _read_errors(self) -> None:
        if not self.stderr_open or self.process is None:
            return
        try:
            chunk = os.read(self.process[2], 65536)
        except BlockingIOError:
            return
        self.stderr_open = bool(chunk)
        if chunk and len(self.errors) < 4096:
            self.errors += chunk
            self.feature.set_status(self.feature.readable, self.errors.decode("utf-8", "replace").strip()[:1024])

    def _ended(self) -> None:
        """journalctl exited: the journal cannot be read (no journald, no permission...)."""
        self._read_errors()
        assert self.process is not None
        code = _wait_or_kill(self.process[0], time.monotonic() + 5)
        self.process = (0, self.process[1], self.process[2])  # reaped: close() must not signal that pid again
        why = self.errors.decode("utf-8", "replace").strip() or "journalctl exited with code %s" % code
        self.close()
        self._failed(time.monotonic(), why)

    def _failed(self, now: float, why: str) -> None:
        self.failures += 1
        self.restart_at = now + min(BACKOFF_CAP_S, 2.0 ** self.failures)
        self.feature.set_status(False, why[:1024])

    def close(self) -> None:
        if self.process is not None:
            pid, out, err = self.process
            if pid:
                _kill_quietly(pid, signal.SIGKILL)
                _wait_or_kill(pid, time.monotonic() + 5)
            os.close(out)
            os.close(err)
            self.process = None
        self.held = None


class SystemLogs(Feature):
    """Ships the machine's own logs as source "system", with the same shipper as demo logs: the
    cursor is saved once the server acknowledged what comes before it, so a restart resumes
    exactly there. When the logs cannot be read, agent.status says why."""

    def __init__(self, agent: Agent):
        Feature.__init__(self, agent)
        config = agent.config
        self.mode, why = choose_system_logs(config)
        self.readable = False
        self.message = why
        self.shipper = LogShipper(agent, "system.logs", "s", SYSTEM_BATCH_DELAY_MS)
        self.saved_position: Any = None
        self.cursor_path = os.path.join(config.state_dir, "system-log-cursor.json")

    def capabilities(self) -> List[str]:
        return ["system-logs"] if self.mode != "off" else []

    def workers(self) -> Dict[str, Callable[[], None]]:
        return {"system-logs": self.run} if self.mode != "off" else {}

    def status(self, data: Dict[str, Any]) -> None:
        data["system_logs"] = {"mode": self.mode, "readable": self.readable}
        if self.message:
            data["system_logs"]["message"] = self.message[:1024]

    def set_status(self, readable: bool, message: str) -> None:
        if (readable, message) != (self.readable, self.message):
            self.readable, self.message = readable, message
            self.agent.status_changed()

    def on_disconnected(self) -> None:
        self.shipper.inbox.put("disconnected")

    # ---- the loop

    def run(self) -> None:
        source = self._source()
        stream = LogStream(source.position, source.describe)
        rewinds = 0
        try:
            while not self.agent.stop_event.is_set():
                self._apply(stream)
                if stream.rewinds != rewinds:
                    rewinds = stream.rewinds
                    source.seek(stream.read_position)
                budget = self.agent.frame_budget()
                if stream.pending_bytes < budget and len(stream.in_flight) < MAX_IN_FLIGHT:
                    source.read(stream, time.monotonic(), budget)
                self.shipper.flush([stream], time.monotonic())
                self.shipper.expire([stream], time.monotonic())
                self.shipper.inbox.wait(0.5 if stream.rewinds == rewinds else 0, source.fds())
        finally:
            source.close()

    def _apply(self, stream: LogStream) -> None:
        for item in self.shipper.inbox.take():
            if item == "disconnected":
                self.shipper.disconnected([stream])
            elif self.shipper.apply(item, time.monotonic()) is stream and stream.acked != self.saved_position:
                self.saved_position = stream.acked
                self._save_cursor(stream.acked)

    def _source(self) -> Any:
        saved = self._load_cursor()
        if self.mode == "journal":
            position = tuple(saved["position"]) if isinstance(saved.get("position"), list) and len(saved["position"]) == 3 else (
                ("after", saved["cursor"], "") if saved.get("cursor") else ("new", "", ""))
            return JournalSource(self, position)  # type: ignore[arg-type]
        return SyslogSource(self, str(saved.get("cursor", "")) if saved.get("mode") == "syslog" else "")

    # ---- cursor

    def _load_cursor(self) -> Dict[str, Any]:
        try:
            saved = parse_json(read_text(self.cursor_path))
            return saved if isinstance(saved, dict) and saved.get("mode") in (self.mode, None) else {}
        except (OSError, ValueError):
            return {}

    def _save_cursor(self, position: Any) -> None:
        state = {"mode": self.mode, "position": list(position)} if self.mode == "journal" else {"mode": self.mode, "cursor": "%d:%d" % position}
        try:
            write_atomic(self.cursor_path, json.dumps(state))
        except OSError as e:
            self.agent.problems.report("state.not_saved", "cannot save the system log cursor: %s" % (e.strerror or e))


def choose_system_logs(config: Config) -> Tuple[str, str]:
    """(mode, why it cannot be read): the journal when journald runs, else the syslog file."""
    if config.system_logs == "off":
        return "off", "disabled in the config (system_logs: off)"
    journal = _which(config.journalctl) is not None
    if config.system_logs == "journal" or (config.system_logs == "auto" and journal and (
            os.path.exists("/run/systemd/journal/socket") or os.path.isdir("/var/log/journal"))):
        return "journal", "" if journal else "%s not found" % config.journalctl
    if config.system_logs == "syslog" or os.path.exists(config.syslog_path):
        return "syslog", ""
    return "off", "no journal (journald or journalctl not found) and no %s" % config.syslog_path


def _parse_file_cursor(cursor: str) -> Tuple[int, int]:
    inode, _, offset = cursor.partition(":")
    return (int(inode), int(offset)) if inode.isdigit() and offset.isdigit() else (0, 0)


FEATURES.append(SystemLogs)


##############################################################################
# Keepalive relay: device keepalives from local demos, forwarded to the server (docs/devices.md)
##############################################################################

RELAY_MAX_HEAD = 8192
RELAY_MAX_BODY = 10 * 1024  # the server's own limit for a keepalive body
RELAY_CLIENT_TIMEOUT_S = 2.0
RELAY_SERVER_TIMEOUT_S = 5.0
RELAY_MAX_ANSWER = 64 * 1024
# The server's three keepalive URL shapes, byte for byte; nothing else is relayed.
RELAY_TARGET = re.compile(r"^/(?:api/v1/devices/[A-Za-z0-9_-]{1,128}/keepalive|api/v1/devices/keepalive|ping/[A-Za-z0-9_-]{1,128}(?:/[a-z0-9]{1,8})?"
                          r"|api/push/[A-Za-z0-9_-]{1,128})(?:\?[\x21-\x7e]{0,2048})?$")


class RelayRefused(Exception):
    def __init__(self, status: int, message: str):
        Exception.__init__(self, message)
        self.status = status


def parse_relay_request(head: bytes) -> Tuple[str, str, Dict[str, str]]:
    """The method, target and headers (lower-cased names) of a request head; RelayRefused if it is not a keepalive."""
    try:
        lines = head.decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        raise RelayRefused(400, "the request head must be ASCII")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise RelayRefused(400, "not an HTTP/1.x request")
    method, target = parts[0], parts[1]
    if method not in ("GET", "HEAD", "POST"):
        raise RelayRefused(405, "only GET, HEAD and POST are relayed")
    if not RELAY_TARGET.match(target):
        raise RelayRefused(404, "not a keepalive URL: use /api/v1/devices/<token>/keepalive, /ping/<token>[/...] or /api/push/<token>?...")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


def relay_answer(status: int, content_type: str, body: bytes, head_only: bool = False) -> bytes:
    reason = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large", 502: "Bad Gateway"}.get(status, "Status")
    head = "HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n" % (status, reason, 0 if status == 204 else len(body))
    if content_type and status != 204:
        head += "Content-Type: %s\r\n" % content_type
    return (head + "\r\n").encode("ascii") + (b"" if head_only or status == 204 else body)


def relay_error(status: int, message: str) -> bytes:
    return relay_answer(status, "application/json", encode_json({"error": {"code": "bad_gateway" if status == 502 else "bad_request", "message": message}}))


def http_base(server_url: str) -> Tuple[str, str, int, bool]:
    """(host, host header, port, tls) of the server's HTTP side, from its agent WebSocket URL."""
    match = re.match(r"^(wss?)://(\[[^\]]+\]|[^/:]+)(?::(\d+))?", server_url)
    if not match:
        raise ValueError("not a WebSocket URL: %s" % server_url)
    secure = match.group(1) == "wss"
    port = int(match.group(3) or (443 if secure else 80))
    host_header = match.group(2) if not match.group(3) else "%s:%s" % (match.group(2), match.group(3))
    return match.group(2).strip("[]"), host_header, port, secure


class KeepaliveRelay(Feature):
    """Demos on this node that cannot use the log file (a shell script, a cron job) send their
    device keepalive to 127.0.0.1:keepalive_port in any of the server's three URL shapes; it is
    forwarded to the server as is (over TLS with the agent's own pin) and the server's answer
    returned. Off unless keepalive_port is set. One connection at a time, each bounded in size and
    time: any local user may connect, and only a valid device token does anything."""

    def workers(self) -> Dict[str, Callable[[], None]]:
        return {"keepalive-relay": self.serve} if self.agent.config.keepalive_port > 0 else {}

    def serve(self) -> None:
        port = self.agent.config.keepalive_port
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind(("127.0.0.1", port))
            except OSError as e:
                self.agent.problems.report("keepalive_relay.unavailable", "cannot listen on 127.0.0.1:%d (%s): trying again in a minute" % (port, e.strerror))
                self.agent.status_changed()
                self.agent.stop_event.wait(60)
                return
            listener.listen(16)
            listener.settimeout(0.5)
            log("INFO", "keepalive relay on http://127.0.0.1:%d" % port)
            while not self.agent.stop_event.is_set():
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    continue
                try:
                    self.handle(conn)
                except OSError:
                    pass  # the demo went away: nothing to answer
                finally:
                    conn.close()
        finally:
            listener.close()

    def handle(self, conn: Any) -> None:
        conn.settimeout(RELAY_CLIENT_TIMEOUT_S)
        deadline = time.monotonic() + RELAY_CLIENT_TIMEOUT_S
        data = b""
        while b"\r\n\r\n" not in data:
            if len(data) > RELAY_MAX_HEAD or time.monotonic() > deadline:
                conn.sendall(relay_error(400, "request head too large or too slow"))
                return
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        try:
            method, target, headers = parse_relay_request(head)
            length = int(headers.get("content-length", "0") or "0") if method == "POST" else 0
            if length < 0:
                raise RelayRefused(400, "bad Content-Length")
            if length > RELAY_MAX_BODY and target.startswith("/api/v1/"):
                raise RelayRefused(413, "body over 10 kB")
            while len(body) < min(length, RELAY_MAX_BODY) and time.monotonic() < deadline:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                body += chunk
            if len(body) < min(length, RELAY_MAX_BODY):
                raise RelayRefused(400, "the body ended early")
        except (RelayRefused, ValueError) as e:
            conn.sendall(relay_error(e.status if isinstance(e, RelayRefused) else 400, str(e)))
            return
        # A Healthchecks body beyond 10 kB is cut, as the server keeps only its first 10 kB anyway.
        conn.sendall(self.forward(method, target, headers, body[:RELAY_MAX_BODY]))

    def forward(self, method: str, target: str, headers: Dict[str, str], body: bytes) -> bytes:
        config = self.agent.config
        try:
            host, host_header, port, secure = http_base(config.server_url)
            address: Any = host.encode("ascii") if host.isascii() else host
            sock: Any = socket.create_connection((address, port), timeout=RELAY_SERVER_TIMEOUT_S)
            try:
                if secure:
                    sock = tls_wrap(sock, host, config.tls_ca_file, config.tls_cert_sha256)
                lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s" % host_header, "Connection: close", "User-Agent: %s keepalive-relay" % USER_AGENT]
                if method == "POST":
                    lines += ["Content-Type: %s" % headers.get("content-type", "application/json")[:128], "Content-Length: %d" % len(body)]
                if headers.get("authorization", "").startswith("Bearer "):
                    lines.append("Authorization: %s" % headers["authorization"][:200])
                sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body)
                answer = b""
                while len(answer) < RELAY_MAX_ANSWER:
                    chunk = sock.recv(16384)
                    if not chunk:
                        break
                    answer += chunk
            finally:
                sock.close()
        except (OSError, ValueError) as e:
            return relay_error(502, "the DVIC server could not be reached: %s" % e)
        answer_head, _, answer_body = answer.partition(b"\r\n\r\n")
        match = re.match(rb"^HTTP/1\.[01] (\d{3})", answer_head)
        if not match:
            return relay_error(502, "the DVIC server's answer was not HTTP")
        content_type = re.search(rb"(?im)^content-type:\s*([^\r\n]{1,128})", answer_head)
        return relay_answer(int(match.group(1)), content_type.group(1).decode("ascii", "replace") if content_type else "", answer_body, method == "HEAD")


FEATURES.append(KeepaliveRelay)

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
        # Escaped as JSON, a byte of output may take 6: a chunk's message must fit in a frame.
        chunk_bytes = max(1024, min(EXEC_CHUNK_BYTES, (self.agent.max_frame_bytes - 1024) // 6))
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
            for fd in poll_wait(list(streams), 0.1):
                chunk = os.read(fd, chunk_bytes)
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

TERMINAL_WINDOW_BYTES = PROTOCOL_CONSTANTS["TERMINAL_WINDOW_BYTES"]
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
            if not poll_wait([session.fd], 0.5):
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
# TCP tunnels: the server reaches a host this node reaches (SSH onboarding through this node)
##############################################################################

MAX_TUNNELS = 16  # open at once; one more is refused with a reason
TUNNEL_CONNECT_TIMEOUT_S = 10.0
TUNNEL_SEND_TIMEOUT_S = 30.0  # a peer that takes nothing for this long ends its tunnel
TUNNEL_READ_BYTES = 32 * 1024


class Tunnel(object):
    def __init__(self, channel: int, sock: Any):
        self.channel = channel
        self.sock = sock
        self.credit = TERMINAL_WINDOW_BYTES  # bytes the server still takes from us
        self.credit_changed = threading.Condition()
        self.closed = False


class Tunnels(Feature):
    """tunnel.open: a TCP connection from this node to host:port, its bytes in binary frames.
    Both ways are bounded: the agent reads from the socket only while the server has credit, and
    grants the server credit for what it wrote to the socket. A failure ends that tunnel only."""

    def __init__(self, agent: Agent):
        Feature.__init__(self, agent)
        self.tunnels: Dict[int, Tunnel] = {}
        self.lock = threading.Lock()
        self.other_credit: Optional[Callable[[int, bytes], None]] = None

    def capabilities(self) -> List[str]:
        return ["tunnel"]

    def handlers(self) -> Dict[str, Callable[[Dict[str, Any]], None]]:
        return {"tunnel.open": self.on_open, "tunnel.close": self.on_close}

    def binary_handlers(self) -> Dict[int, Callable[[int, bytes], None]]:
        # Credit frames are shared with terminals: the ones for other channels go on to them.
        self.other_credit = self.agent.binary_handlers.get(OP_CREDIT)
        return {OP_TUNNEL_DATA: self.on_data, OP_CREDIT: self.on_credit}

    def on_open(self, message: Dict[str, Any]) -> None:
        data = message["data"]
        channel = data["channel"]
        host = data.get("host") or "127.0.0.1"
        with self.lock:
            problem = ("channel %d is already open" % channel if channel in self.tunnels
                       else "too many tunnels open (%d)" % MAX_TUNNELS if len(self.tunnels) >= MAX_TUNNELS else "")
            if not problem:
                self.tunnels[channel] = Tunnel(channel, None)
        if problem:
            self._tell_closed(channel, problem)
            return
        threading.Thread(target=self._connect, args=(channel, host, data["port"]), name="tunnel", daemon=True).start()

    def _connect(self, channel: int, host: str, port: int) -> None:
        try:
            sock = socket.create_connection((host, port), timeout=TUNNEL_CONNECT_TIMEOUT_S)
        except (OSError, ValueError, UnicodeError) as e:
            self._forget(channel)
            self._tell_closed(channel, "cannot connect to %s:%d from this node: %s" % (host, port, _socket_problem(e)))
            return
        sock.settimeout(TUNNEL_SEND_TIMEOUT_S)
        with self.lock:
            tunnel = self.tunnels.get(channel)
            if tunnel is not None:
                tunnel.sock = sock
        if tunnel is None:  # closed by the server while connecting
            sock.close()
            return
        self.agent.send({"type": "tunnel.opened", "data": {"channel": channel}})
        self._pump(tunnel)

    def on_data(self, channel: int, payload: bytes) -> None:
        tunnel = self.tunnels.get(channel)
        if tunnel is None or tunnel.sock is None or tunnel.closed:
            return
        try:
            tunnel.sock.sendall(payload)  # bounded by the socket's timeout; the server sends only within its credit
        except OSError as e:
            self._end(tunnel, "writing to the target failed: %s" % _socket_problem(e))
            return
        self.agent.send_binary(encode_binary_frame(OP_CREDIT, channel, struct.pack(">I", len(payload))))

    def on_credit(self, channel: int, payload: bytes) -> None:
        tunnel = self.tunnels.get(channel)
        if tunnel is None:
            if self.other_credit is not None:
                self.other_credit(channel, payload)
            return
        if len(payload) != 4:
            return
        with tunnel.credit_changed:
            tunnel.credit = min(TERMINAL_WINDOW_BYTES, tunnel.credit + struct.unpack(">I", payload)[0])
            tunnel.credit_changed.notify()

    def on_close(self, message: Dict[str, Any]) -> None:
        tunnel = self.tunnels.get(message["data"]["channel"])
        if tunnel is not None:
            self._end(tunnel, None)

    def on_disconnected(self) -> None:
        self.stop()

    def stop(self) -> None:
        for tunnel in list(self.tunnels.values()):
            self._end(tunnel, None)

    def _pump(self, tunnel: Tunnel) -> None:
        """Target to server, while the server has credit; the target's end closes the tunnel."""
        reason = "the target closed the connection"
        while not tunnel.closed:
            with tunnel.credit_changed:
                while tunnel.credit <= 0 and not tunnel.closed:
                    tunnel.credit_changed.wait(0.5)
                budget = tunnel.credit
            if tunnel.closed:
                return
            if not poll_wait([tunnel.sock.fileno()], 0.5):
                continue
            try:
                data = tunnel.sock.recv(min(budget, TUNNEL_READ_BYTES))
            except OSError as e:
                reason = "reading from the target failed: %s" % _socket_problem(e)
                break
            if not data:
                break
            with tunnel.credit_changed:
                tunnel.credit -= len(data)
            if not self.agent.send_binary(encode_binary_frame(OP_TUNNEL_DATA, tunnel.channel, data)):
                reason = "the server connection ended"
                break
        self._end(tunnel, reason)

    def _forget(self, channel: int) -> None:
        with self.lock:
            self.tunnels.pop(channel, None)

    def _end(self, tunnel: Tunnel, reason: Optional[str]) -> None:
        """Closes a tunnel once; reason set: the server did not ask for it and is told why."""
        with self.lock:
            if tunnel.closed:
                return
            tunnel.closed = True
            self.tunnels.pop(tunnel.channel, None)
        with tunnel.credit_changed:
            tunnel.credit_changed.notify()
        if tunnel.sock is not None:
            try:
                tunnel.sock.close()
            except OSError:
                pass
        if reason is not None:
            self._tell_closed(tunnel.channel, reason)

    def _tell_closed(self, channel: int, reason: str) -> None:
        self.agent.send({"type": "tunnel.close", "data": {"channel": channel, "reason": reason[:256]}})


def _socket_problem(error: BaseException) -> str:
    if isinstance(error, socket.timeout):
        return "timed out"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


FEATURES.append(Tunnels)

##############################################################################
# Deploy: artifacts fetched in chunks over this connection, checked, unpacked
# without escaping their directory, swapped in atomically, the previous kept
##############################################################################

DEPLOY_WINDOW = 4  # chunks asked for ahead: bounds the bytes in flight per deploy
DEPLOY_CHUNK_BYTES = 256 * 1024
DEPLOY_CHUNK_TIMEOUT_S = 60.0
DEPLOY_PROGRESS_INTERVAL_S = 0.5
DEPLOY_COMMAND_TIMEOUT_S = 600.0
DEPLOY_DONE_KEPT = 200  # finished deploy ids remembered, so a request sent again is not done twice
DEPLOY_MAX_MEMBERS = 200000
COPY_BYTES = 1024 * 1024
RENAME_EXCHANGE = 2


class DeployError(Exception):
    """A deploy that cannot go on, with the reason the operator sees."""


class DeployInterrupted(Exception):
    """The connection ended: the bytes downloaded so far are kept for the next attempt."""


def check_deploy_path(path: str, roots: List[str]) -> str:
    """The allowed root path lies strictly under, else DeployError (checked as text: no .., no //)."""
    if not path.startswith("/") or os.path.normpath(path) != path or "\0" in path:
        raise DeployError("path %r is not an absolute, normalized path" % path)
    for root in roots:
        root = os.path.normpath(root)
        if path.startswith(root.rstrip("/") + "/"):
            return root
    raise DeployError("path %s is outside the allowed roots (%s): see deploy_roots in the agent config" % (path, ", ".join(roots)))


def prepare_parent(path: str, root: str) -> None:
    """Walks from root down to path's parent one level at a time, creating a missing level
    (0755, the agent's) only under a level already checked. Every level must be a real directory
    (lstat: a symlink is refused, not followed) that only root or the agent owns and no one else
    may write to: then no other user can swap a level while the agent works below it."""
    if not os.path.isdir(root):
        os.makedirs(root, mode=0o755, exist_ok=True)  # the configured root itself may be a symlink the admin made
    check_safe_level(root, os.stat(root), root)
    current = root
    for part in os.path.relpath(os.path.dirname(path), root).split(os.sep):
        if part in ("", "."):
            continue
        current = os.path.join(current, part)
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            pass
        check_safe_level(current, os.lstat(current), root)


def check_safe_level(level: str, st: os.stat_result, root: str) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise DeployError("%s is a symlink below %s: refused" % (level, root))
    if not stat.S_ISDIR(st.st_mode):
        raise DeployError("%s is not a directory: refused" % level)
    if st.st_uid not in (0, os.geteuid()):
        raise DeployError("%s is owned by uid %d, not root: refused (chown root it)" % (level, st.st_uid))
    if st.st_mode & 0o022:
        # Another user could plant links where the agent (root) writes its temporary files.
        raise DeployError("%s is writable by other users: refused (chmod go-w it)" % level)


def check_target(path: str, directory: bool) -> None:
    """What is at path now must be what the deploy replaces: a directory, a file, or nothing."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise DeployError("%s is a symlink: refused" % path)
    if directory and not stat.S_ISDIR(st.st_mode):
        raise DeployError("%s is not a directory (extract needs one there, or nothing)" % path)
    if not directory and not stat.S_ISREG(st.st_mode):
        raise DeployError("%s is a %s where a file was expected" % (path, "directory" if stat.S_ISDIR(st.st_mode) else "special file"))


def archive_member(name: str) -> str:
    """An archive entry's path relative to the extraction directory; DeployError if it escapes."""
    clean = name.replace("\\", "/")
    while clean.startswith("./"):
        clean = clean[2:]
    clean = clean.rstrip("/")
    if not clean or clean == ".":
        return ""
    if clean.startswith("/") or "\0" in clean:
        raise DeployError("archive entry %r has an absolute path: refused, nothing was written" % name[:200])
    if ".." in clean.split("/"):
        raise DeployError("archive entry %r escapes with '..': refused, nothing was written" % name[:200])
    return clean


def remove_path(path: str) -> None:
    """Removes a file, symlink or directory tree (never following a symlink)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil
        shutil.rmtree(path)
    else:
        os.unlink(path)


class SafeExtractor(object):
    """Writes archive members under dest: directories and regular files first, links at the
    end, so no file is ever written through a link; every link must resolve inside dest.
    Device files, FIFOs and entries that escape are refused."""

    def __init__(self, dest: str):
        self.dest = dest
        self.links: List[Tuple[str, str, bool]] = []  # (name, target, hard)
        self.count = 0

    def _count(self) -> None:
        self.count += 1
        if self.count > DEPLOY_MAX_MEMBERS:
            raise DeployError("archive has more than %d entries: refused" % DEPLOY_MAX_MEMBERS)

    def directory(self, name: str) -> None:
        self._count()
        rel = archive_member(name)
        if rel:
            os.makedirs(os.path.join(self.dest, rel), mode=0o755, exist_ok=True)

    def file(self, name: str, source: Any, mode: int) -> None:
        self._count()
        rel = archive_member(name)
        if not rel:
            raise DeployError("archive entry %r is not a file name" % name[:200])
        target = os.path.join(self.dest, rel)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        remove_path(target)  # a later entry of the same name wins, as with tar
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, (mode & 0o777) or 0o644)
        with os.fdopen(fd, "wb") as out:
            while True:
                block = source.read(COPY_BYTES)
                if not block:
                    break
                out.write(block)

    def link(self, name: str, target: str, hard: bool) -> None:
        self._count()
        rel = archive_member(name)
        if not rel:
            raise DeployError("archive entry %r is not a file name" % name[:200])
        if hard:
            target = archive_member(target)
        elif target.startswith("/"):
            raise DeployError("symlink %r points outside (to %s): refused, nothing was written" % (name[:200], target[:200]))
        self.links.append((rel, target, hard))

    def special(self, name: str, kind: str) -> None:
        raise DeployError("archive entry %r is a %s: refused, nothing was written" % (name[:200], kind))

    def finish(self) -> None:
        """Makes the links, then checks every one resolves inside dest."""
        real_dest = os.path.realpath(self.dest)
        for rel, target, hard in self.links:
            path = os.path.join(self.dest, rel)
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            if os.path.realpath(os.path.dirname(path)) != os.path.join(real_dest, os.path.dirname(rel)).rstrip("/"):
                raise DeployError("archive entry %r lies under a symlink: refused, nothing was written" % rel[:200])
            remove_path(path)
            if hard:
                # Checked before linking: os.link follows a symlink made earlier in this loop,
                # which a later entry of the same name may replace before the final check.
                named = os.path.join(self.dest, target)
                source = os.path.realpath(named)
                if not source.startswith(real_dest + "/") or os.path.islink(named) or not os.path.isfile(source):
                    raise DeployError("hard link %r points to %r, not a file of the archive: refused" % (rel[:200], target[:200]))
                os.link(source, path)
            else:
                os.symlink(target, path)
        for rel, target, _ in self.links:
            resolved = os.path.realpath(os.path.join(self.dest, rel))
            if resolved != real_dest and not resolved.startswith(real_dest + "/"):
                raise DeployError("symlink %r points outside (to %s): refused, nothing was written" % (rel[:200], target[:200]))


def extract_tar(archive: str, dest: str) -> None:
    import tarfile
    extractor = SafeExtractor(dest)
    with tarfile.open(archive, "r|*") as tar:  # a stream: one member at a time, bounded memory
        for member in tar:
            if member.isdir():
                extractor.directory(member.name)
            elif member.isreg():
                extractor.file(member.name, tar.extractfile(member), member.mode)
            elif member.issym() or member.islnk():
                extractor.link(member.name, member.linkname, member.islnk())
            else:
                extractor.special(member.name, "FIFO" if member.isfifo() else "device file" if member.isdev() else "special file")
    extractor.finish()


def extract_zip(archive: str, dest: str) -> None:
    import zipfile
    extractor = SafeExtractor(dest)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            mode = info.external_attr >> 16
            if info.filename.endswith("/") or stat.S_ISDIR(mode):
                extractor.directory(info.filename)
            elif stat.S_ISLNK(mode):
                if info.file_size > 4096:
                    raise DeployError("symlink %r has a target longer than 4096 bytes: refused" % info.filename[:200])
                extractor.link(info.filename, zf.read(info).decode("utf-8", "replace"), False)
            elif mode and not stat.S_ISREG(mode):
                extractor.special(info.filename, "device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file")
            else:
                with zf.open(info) as source:
                    extractor.file(info.filename, source, mode & 0o777)
    extractor.finish()


def exchange_paths(a: str, b: str) -> bool:
    """Swaps two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.renameat2(-100, a.encode(), -100, b.encode(), RENAME_EXCHANGE) == 0
    except (OSError, AttributeError):
        return False


def swap_in(staging: str, path: str, previous: str) -> None:
    """staging becomes path; what was at path becomes previous. With RENAME_EXCHANGE path
    always names a complete version; elsewhere it is missing for the instant between renames."""
    if not os.path.lexists(path):
        os.rename(staging, path)
        return
    remove_path(previous)
    if exchange_paths(staging, path):
        os.rename(staging, previous)
    else:
        os.rename(path, previous)
        os.rename(staging, path)


def apply_owner_mode(path: str, owner: str, mode: str, directory: bool) -> None:
    """Hands the staged file or tree to owner, then sets the top's mode. The top is changed LAST:
    until then it is root's 0700, so the new owner cannot swap anything inside while it is walked
    (and the walk goes by directory fds, changing links themselves, never what they point to)."""
    if owner:
        uid, gid = owner_ids(owner)
        if directory:
            for _, dirs, files, fd in os.fwalk(path, follow_symlinks=False):
                for name in dirs + files:
                    os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
        os.chown(path, uid, gid, follow_symlinks=False)
    if mode:
        os.chmod(path, int(mode, 8))  # after chown, which clears setuid bits the mode may ask for
    elif directory:
        os.chmod(path, 0o755)


def owner_ids(owner: str) -> Tuple[int, int]:
    """owner ("user" or "user:group") as (uid, gid); DeployError for a name that does not exist."""
    import grp
    import pwd
    user, _, group = owner.partition(":")
    try:
        return pwd.getpwnam(user).pw_uid, (grp.getgrnam(group).gr_gid if group else pwd.getpwnam(user).pw_gid)
    except KeyError as e:
        raise DeployError("owner %s: no such user or group (%s)" % (owner, e))


def run_hook(which: str, command: str) -> None:
    """pre_command / post_command through /bin/sh -c; a failure carries the end of its output."""
    code, out, err = run_program(["/bin/sh", "-c", command], DEPLOY_COMMAND_TIMEOUT_S)
    if code != 0:
        tail = (out + err).decode("utf-8", "replace").strip()[-400:]
        raise DeployError("%s failed (exit %s)%s" % (which, code, ": " + tail if tail else ""))


class DeployJob(object):
    def __init__(self, data: Dict[str, Any]):
        self.data = data
        self.deploy_id = str(data["deploy_id"])
        self.chunks: Any = None  # queue.Queue of (offset, bytes), for a deploy
        self.cancelled = threading.Event()
        self.interrupted = threading.Event()
        self.thread: Optional[threading.Thread] = None


class Deploys(Feature):
    """deploy.request: deploy (fetch, verify, extract, pre_command, swap, post_command),
    rollback (swap the previous back) or cancel. Destinations must lie under deploy_roots.
    Downloads go to a hidden .part file next to the target and continue from it after a drop."""

    def __init__(self, agent: Agent):
        Feature.__init__(self, agent)
        self.jobs: Dict[str, DeployJob] = {}
        self.by_channel: Dict[int, DeployJob] = {}
        self.lock = threading.Lock()
        self.done_path = os.path.join(agent.config.state_dir, "deploys.json")

    def capabilities(self) -> List[str]:
        return ["deploy"]

    def handlers(self) -> Dict[str, Callable[[Dict[str, Any]], None]]:
        return {"deploy.request": self.on_request}

    def binary_handlers(self) -> Dict[int, Callable[[int, bytes], None]]:
        return {OP_ARTIFACT_CHUNK: self.on_chunk}

    def on_request(self, message: Dict[str, Any]) -> None:
        data = message["data"]
        key = "%s:%s" % (data["deploy_id"], "rollback" if data["action"] == "rollback" else "deploy")
        with self.lock:
            running = self.jobs.get(key)
            if data["action"] == "cancel":
                if running is not None:
                    running.cancelled.set()
                return
            job = DeployJob(data)
            self.jobs[key] = job
        job.thread = threading.Thread(target=self._run, args=(key, job, running), name="deploy", daemon=True)
        job.thread.start()

    def on_chunk(self, channel: int, payload: bytes) -> None:
        job = self.by_channel.get(channel)
        if job is not None and job.chunks is not None and len(payload) >= 8:
            job.chunks.put((struct.unpack(">Q", payload[:8])[0], payload[8:]))

    def on_disconnected(self) -> None:
        with self.lock:
            for job in self.jobs.values():
                job.interrupted.set()

    def stop(self) -> None:
        self.on_disconnected()

    def _report(self, job: DeployJob, state: str, **extra: Any) -> None:
        self.agent.send({"type": "deploy.status", "data": dict(extra, deploy_id=job.deploy_id, state=state)})

    def _run(self, key: str, job: DeployJob, previous: Optional[DeployJob]) -> None:
        if previous is not None and previous.thread is not None:
            previous.interrupted.set()
            previous.thread.join(2 * DEPLOY_COMMAND_TIMEOUT_S + DEPLOY_CHUNK_TIMEOUT_S)  # its steps are all bounded
        try:
            if previous is not None and previous.thread is not None and previous.thread.is_alive():
                raise DeployError("an earlier attempt of this deploy is still running on the node")
            if key in self._done():
                self._report(job, "done", message="already done")
            elif job.data["action"] == "rollback":
                self._rollback(job)
            else:
                self._deploy(job)
            self._remember(key)
        except DeployInterrupted:
            log("INFO", "deploy %s interrupted: it continues when the server asks again" % job.deploy_id)
        except DeployError as e:
            self._report(job, "cancelled" if job.cancelled.is_set() else "failed", message=str(e)[:1024])
        except OSError as e:
            full = e.errno in (errno.ENOSPC, errno.EDQUOT)
            why = "no space left on the node's disk" if full else "%s: %s" % (type(e).__name__, e)
            self._report(job, "failed", message=("%s (%s): nothing was kept" % (why, job.data["path"]))[:1024])
        except Exception as e:  # a bug: the operator sees it, the agent goes on
            self._report(job, "failed", message=("%s: %s" % (type(e).__name__, e))[:1024])
        finally:
            with self.lock:
                if self.jobs.get(key) is job:
                    del self.jobs[key]
                for channel in [c for c, j in self.by_channel.items() if j is job]:
                    del self.by_channel[channel]

    def _paths(self, job: DeployJob) -> Tuple[str, str, str]:
        """(path, its hidden sibling prefix, the allowed root) after the checks."""
        path = job.data["path"]
        root = check_deploy_path(path, self.agent.config.deploy_roots)
        prepare_parent(path, root)
        return path, os.path.join(os.path.dirname(path), "." + os.path.basename(path)), root

    def _checkpoint(self, job: DeployJob, interruptible: bool = True) -> None:
        """Stops a cancelled deploy; an interrupted one stops only while it downloads (what
        follows needs no connection, and the server's next request learns it was done)."""
        if job.cancelled.is_set():
            raise DeployError("cancelled")
        if interruptible and job.interrupted.is_set():
            raise DeployInterrupted()

    def _deploy(self, job: DeployJob) -> None:
        data = job.data
        path, hidden, _ = self._paths(job)
        extract = bool(data.get("extract"))
        check_target(path, extract)
        part = "%s.dvic-part-%s" % (hidden, job.deploy_id)
        self._forget_others(hidden, part)
        try:
            digest = self._download(job, part)
        except DeployInterrupted:  # the bytes so far are kept for the next attempt
            raise
        except BaseException:  # cancelled, broken, or the disk failed: nothing is kept
            remove_path(part)
            raise
        self._report(job, "verifying", bytes=data["size"])
        if digest != data["sha256"]:
            os.unlink(part)
            raise DeployError("sha256 mismatch: expected %s, got %s (the download was discarded)" % (data["sha256"], digest))
        staging = "%s.dvic-new-%s" % (hidden, job.deploy_id)
        remove_path(staging)
        try:
            if extract:
                self._report(job, "extracting")
                os.mkdir(staging, 0o700)
                (extract_zip if data["format"] == "zip" else extract_tar)(part, staging)
                os.unlink(part)
            else:
                os.rename(part, staging)
            apply_owner_mode(staging, data.get("owner", ""), data.get("mode", "" if extract else "0644"), extract)
            self._checkpoint(job, interruptible=False)
            self._switch(job, path, staging, "%s.dvic-prev" % hidden)
        except BaseException:
            remove_path(staging)
            remove_path(part)  # checked already: a new attempt downloads again
            raise

    @staticmethod
    def _forget_others(hidden: str, part: str) -> None:
        """Downloads and unpackings of earlier deploys to this path that never finished."""
        for pattern in (".dvic-part-*", ".dvic-new-*"):
            for stale in glob.glob(glob.escape(hidden) + pattern):
                if stale != part:
                    remove_path(stale)

    def _switch(self, job: DeployJob, path: str, staging: str, previous: str) -> None:
        if job.data.get("pre_command"):
            self._report(job, "pre_command")
            run_hook("pre_command", job.data["pre_command"])
        self._report(job, "switching")
        swap_in(staging, path, previous)
        if job.data.get("post_command"):
            self._report(job, "post_command")
            try:
                run_hook("post_command", job.data["post_command"])
            except DeployError as e:
                raise DeployError("in place, but %s (roll back to restore the previous)" % e)
        self._report(job, "done", bytes=job.data.get("size", 0), message="sha256 %s verified" % job.data["sha256"] if "sha256" in job.data else "rolled back")

    def _rollback(self, job: DeployJob) -> None:
        path, hidden, _ = self._paths(job)
        previous = "%s.dvic-prev" % hidden
        if not os.path.lexists(previous):
            raise DeployError("no previous version of %s is kept on this node" % path)
        self._report(job, "rolling_back")
        staging = "%s.dvic-back-%s" % (hidden, job.deploy_id)
        os.rename(previous, staging)
        self._switch(job, path, staging, previous)

    def _open_part(self, part: str) -> int:
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
            os.close(fd)
            raise DeployError("%s is not this agent's download: refused" % part)
        return fd

    def _download(self, job: DeployJob, part: str) -> str:
        """Fetches the bytes part lacks, DEPLOY_WINDOW chunks in flight; returns the sha256 of all."""
        import hashlib
        import queue
        size = int(job.data["size"])
        fd = self._open_part(part)
        try:
            have = os.fstat(fd).st_size
            if have > size:
                os.ftruncate(fd, 0)
                have = 0
            digest = hashlib.sha256()
            os.lseek(fd, 0, os.SEEK_SET)
            while os.lseek(fd, 0, os.SEEK_CUR) < have:
                digest.update(os.read(fd, min(COPY_BYTES, have - os.lseek(fd, 0, os.SEEK_CUR))))
            self._report(job, "downloading", bytes=have, resumed_from=have)
            job.chunks = queue.Queue()
            with self.lock:
                self.by_channel[int(job.data["channel"])] = job
            self._fetch(job, fd, digest, have, size)
            return digest.hexdigest()
        finally:
            os.close(fd)

    def _fetch(self, job: DeployJob, fd: int, digest: Any, have: int, size: int) -> None:
        import queue
        chunk = min(int(job.data.get("chunk_bytes", DEPLOY_CHUNK_BYTES)), DEPLOY_CHUNK_BYTES * 4)
        asked = have
        reported = time.monotonic()
        while have < size:
            self._checkpoint(job)
            while asked < size and asked - have < chunk * DEPLOY_WINDOW:
                length = min(chunk, size - asked)
                if not self.agent.send({"type": "deploy.fetch", "data": {"deploy_id": job.deploy_id, "offset": asked, "length": length}}):
                    raise DeployInterrupted()
                asked += length
            try:
                offset, data = job.chunks.get(timeout=0.5)
            except queue.Empty:
                if time.monotonic() - reported > DEPLOY_CHUNK_TIMEOUT_S:
                    raise DeployError("download stalled: no bytes from the server for %d s" % DEPLOY_CHUNK_TIMEOUT_S)
                continue
            if offset < have:
                continue  # asked for by an earlier attempt of this deploy: the same bytes, already written
            if offset != have or not data:
                raise DeployError("the server sent bytes at %d while %d was expected (artifact deleted?)" % (offset, have))
            os.lseek(fd, have, os.SEEK_SET)
            os.write(fd, data)
            digest.update(data)
            have += len(data)
            if time.monotonic() - reported >= DEPLOY_PROGRESS_INTERVAL_S or have == size:
                reported = time.monotonic()
                self._report(job, "downloading", bytes=have)

    def _done(self) -> List[str]:
        try:
            with open(self.done_path) as f:
                done = json.load(f)
            return done if isinstance(done, list) else []
        except (OSError, ValueError):
            return []

    def _remember(self, key: str) -> None:
        with self.lock:
            done = [k for k in self._done() if k != key] + [key]
            write_atomic(self.done_path, json.dumps(done[-DEPLOY_DONE_KEPT:]))


FEATURES.append(Deploys)


##############################################################################
# Self-update: fetch the new file over this link, verify (sha256, the server's signature with
# openssl), compile, --selftest, stage under <update_root>/versions/<v>/, flip, restart.
# A version on trial proves itself (hello, then connected a while) or is rolled back: by its
# own watchdog, or by the guard the unit runs before every start (see run_guard).
##############################################################################

UPDATE_EXIT_CODE = 75  # the unit restarts on any exit; 75 (EX_TEMPFAIL) says "restart me, on purpose"
UPDATE_CHUNK_BYTES = 64 * 1024
UPDATE_MAX_BYTES = 16 * 1024 * 1024
UPDATE_FETCH_TIMEOUT_S = 30.0
UPDATE_STEP_TIMEOUT_S = 120.0
AGENT_FILE = "dvic_agent.py"
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")


def version_key(version: str) -> Tuple[Tuple[int, int, str], ...]:
    """Orders versions: numeric parts as numbers ("0.10.0" after "0.9.1"), text parts after them."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.+-]", version))


def refuse_version(candidate: str, running: str, force: bool) -> Optional[str]:
    """Why this version must not be installed over the running one, or None."""
    if not VERSION_RE.match(candidate) or candidate in (".", ".."):
        return "%r is not a version name" % candidate
    if candidate == running:
        return "version %s is already running" % running
    if not force and version_key(candidate) < version_key(running):
        return "%s is older than the running %s: a downgrade needs force" % (candidate, running)
    return None


class UpdatePaths(object):
    """The layout under the update root: entry (what the unit runs: a link into versions/),
    versions/<v>/dvic_agent.py, guard.py (the last version that proved healthy), and the trial
    and outcome records."""

    def __init__(self, root: str):
        self.root = root
        self.entry = os.path.join(root, AGENT_FILE)
        self.versions = os.path.join(root, "versions")
        self.guard = os.path.join(root, "guard.py")
        self.trial = os.path.join(root, "trial.json")
        self.outcome = os.path.join(root, "outcome.json")

    def version_file(self, version: str) -> str:
        return os.path.join(self.versions, version, AGENT_FILE)

    def inside_versions(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real.startswith(os.path.realpath(self.versions) + os.sep)


def read_json_file(path: str) -> Optional[Dict[str, Any]]:
    """A small JSON record this agent wrote (root-owned, in a root-only dir), or None."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 65536:
            return None
        value = parse_json(read_text(path))
        return value if isinstance(value, dict) else None
    except (OSError, ValueError):
        return None


def flip_link(link: str, target: str) -> None:
    """Points link at target in one step (rename over the old link or file)."""
    tmp = "%s.new%d" % (link, os.getpid())
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def copy_file(source: str, destination: str, mode: int) -> None:
    with open(source, "rb") as f:
        data = f.read()
    tmp = "%s.tmp%d" % (destination, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, destination)


def guard_verdict(trial: Optional[Dict[str, Any]]) -> str:
    """What the guard does before a start: "none" (no trial), "start" (the version on trial
    starts for the first time) or "rollback" (it started before and never proved healthy:
    it crashed, exited, or was stopped by its own watchdog)."""
    if trial is None:
        return "none"
    return "start" if trial.get("state") == "switched" else "rollback"


UNIT_RE = re.compile(r"^[A-Za-z0-9:_.@-]{1,200}\.service$")


def run_guard(root: str, unit: str = "") -> int:
    """The unit's ExecStartPre (run from guard.py, a copy of a version that proved healthy, so a
    new file that crashes at import cannot break it). Always exits 0: the start goes on."""
    paths = UpdatePaths(root)
    trial = read_json_file(paths.trial)
    verdict = guard_verdict(trial)
    if trial is None or verdict == "none":
        return 0
    if verdict == "start":
        write_atomic(paths.trial, json.dumps(dict(trial, state="started")), 0o600)
        arm_trial_deadline(root, trial, unit)
        return 0
    previous = str(trial.get("previous", ""))
    message = "version %s did not prove healthy (no hello in %ds, or not connected %ds, or it exited): back on %s" % (
        trial.get("version"), trial.get("hello_s", 0), trial.get("stable_s", 0), os.path.basename(os.path.dirname(previous)))
    if previous and paths.inside_versions(previous) and os.path.isfile(previous):
        flip_link(paths.entry, previous)
    else:
        message = "version %s failed and the previous file %r is missing or outside versions/: not rolled back" % (trial.get("version"), previous)
    write_atomic(paths.outcome, json.dumps({"update_id": trial.get("update_id"), "version": trial.get("version"),
                                            "step": "rolled_back", "message": message[:1024]}), 0o600)
    os.unlink(paths.trial)
    sys.stderr.write("dvic-agent guard: %s\n" % message)
    return 0


def arm_trial_deadline(root: str, trial: Dict[str, Any], unit: str) -> None:
    """Under systemd, a timer of its own (systemd-run) restarts the unit if the version on trial
    is still unproven well after its watchdog should have acted: a file that hangs at import
    never runs that watchdog. The restart runs this guard, which then rolls back."""
    update_id = re.sub(r"[^A-Za-z0-9-]", "", str(trial.get("update_id", "")))[:36]
    if not os.environ.get("INVOCATION_ID") or not UNIT_RE.match(unit) or not update_id or not _which("systemd-run"):
        return
    watchdog_s = float(trial.get("hello_s", 60)) + float(trial.get("stable_s", 30))
    delay = int(watchdog_s + max(10.0, watchdog_s / 3))  # well after the trial's own watchdog should have acted
    code, _, err = run_program(["systemd-run", "--quiet", "--collect", "--unit", "dvic-agent-trial-%s" % update_id, "--on-active=%ds" % delay, "--timer-property=AccuracySec=1s",
                                sys.executable, os.path.abspath(__file__), "--trial-deadline", root, update_id, unit], 30)
    if code != 0:
        sys.stderr.write("dvic-agent guard: no trial deadline timer (%s)\n" % last_line(err))


def run_trial_deadline(root: str, update_id: str, unit: str) -> int:
    """The timer armed by the guard: restarts the unit when that update is still on trial."""
    trial = read_json_file(UpdatePaths(root).trial)
    if trial is None or trial.get("update_id") != update_id or trial.get("state") != "started" or not UNIT_RE.match(unit):
        return 0
    sys.stderr.write("dvic-agent guard: version %s still unproven past its deadline: restarting %s to roll back\n" % (trial.get("version"), unit))
    code, _, err = run_program(["systemctl", "restart", "--no-block", unit], 60)
    if code != 0:
        sys.stderr.write("dvic-agent guard: systemctl restart %s failed: %s\n" % (unit, last_line(err)))
    return code


class UpdateFailed(Exception):
    """An update step that failed: reported as step "failed" with this message; nothing switched."""


class SelfUpdate(Feature):
    """update.request: one at a time, in its own thread. The trial watchdog runs when this
    process is a version on trial."""

    def __init__(self, agent: Agent):
        Feature.__init__(self, agent)
        self.paths = UpdatePaths(agent.config.update_root)
        self.busy = threading.Lock()
        self.chunks = Inbox()
        self.busy_outcome = threading.Lock()
        trial = read_json_file(self.paths.trial)
        self.trial = trial if trial and trial.get("version") == AGENT_VERSION else None

    def capabilities(self) -> List[str]:
        return ["update"]

    def handlers(self) -> Dict[str, Callable[[Dict[str, Any]], None]]:
        return {"update.request": self.on_request, "update.chunk": lambda m: self.chunks.put(m["data"])}

    def workers(self) -> Dict[str, Callable[[], None]]:
        return {"update-trial": self.watch_trial} if self.trial else {}

    def on_connected(self) -> None:
        """Pins the welcome's update key if none is pinned yet; reports the last update's verdict
        (the guard's rollback, or this version's health) once."""
        self._pin_first_key()
        with self.busy_outcome:
            outcome = read_json_file(self.paths.outcome)
            if outcome and self.report(outcome):
                try:
                    os.unlink(self.paths.outcome)
                except OSError:
                    pass  # reported; a leftover file is reported once more at most

    def report(self, data: Dict[str, Any]) -> bool:
        fields = {k: data[k] for k in ("update_id", "version", "step", "progress", "message") if data.get(k) is not None}
        return self.agent.send({"type": "update.status", "data": fields})

    # ---- the update itself

    def on_request(self, message: Dict[str, Any]) -> None:
        data = message["data"]
        if not self.busy.acquire(False):
            self.report(dict(data, step="failed", message="another update is running"))
            return
        threading.Thread(target=self._update, args=(data,), name="update", daemon=True).start()

    def _update(self, data: Dict[str, Any]) -> None:
        try:
            self._install(data)
        except UpdateFailed as e:
            self.report(dict(data, step="failed", message=str(e)[:1024]))
            log("WARN", "update to %s refused: %s" % (data["version"], e))
        except (OSError, ValueError, RuntimeError) as e:
            self.report(dict(data, step="failed", message=("%s: %s" % (type(e).__name__, e))[:1024]))
        finally:
            self.busy.release()

    def _install(self, data: Dict[str, Any]) -> None:
        version = data["version"]
        problem = refuse_version(version, AGENT_VERSION, bool(data.get("force")))
        if problem:
            raise UpdateFailed(problem)
        if os.path.exists(self.paths.trial):
            raise UpdateFailed("a version is still on trial here")
        os.makedirs(self.paths.versions, mode=0o755, exist_ok=True)
        staging = os.path.join(self.paths.versions, ".staging-%s" % base64.urlsafe_b64encode(os.urandom(6)).decode("ascii"))
        os.mkdir(staging, 0o700)
        try:
            staged = os.path.join(staging, AGENT_FILE)
            self._download(data, staged)
            self.report(dict(data, step="verify"))
            self._verify(data, staged, staging)
            self.report(dict(data, step="selftest"))
            self._selftest(staged, staging)
            self._switch(data, staging)
        finally:
            self._remove_tree(staging)
        self.report(dict(data, step="restart"))
        log("INFO", "updated to %s: restarting" % version)
        self.agent.exit_code = UPDATE_EXIT_CODE
        self.agent.stop()

    def _download(self, data: Dict[str, Any], staged: str) -> None:
        size = int(data["size"])
        if size > UPDATE_MAX_BYTES:
            raise UpdateFailed("the new file is %d bytes, over the %d an agent takes" % (size, UPDATE_MAX_BYTES))
        self.chunks.take()
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            offset = 0
            while offset < size:
                self.report(dict(data, step="download", progress=round(offset / size, 3)))
                piece = self._fetch(data, offset, min(UPDATE_CHUNK_BYTES, size - offset))
                os.write(fd, piece)
                offset += len(piece)
        finally:
            os.close(fd)

    def _fetch(self, data: Dict[str, Any], offset: int, length: int) -> bytes:
        ask = {"update_id": data["update_id"], "version": data["version"], "offset": offset, "length": length}
        if not self.agent.send({"type": "update.fetch", "data": ask}):
            raise UpdateFailed("the connection to the server ended during the download")
        deadline = time.monotonic() + UPDATE_FETCH_TIMEOUT_S
        while time.monotonic() < deadline and not self.agent.stop_event.is_set():
            self.chunks.wait(1.0)
            for chunk in self.chunks.take():
                if chunk["update_id"] != data["update_id"] or chunk["offset"] != offset:
                    continue
                if "error" in chunk:
                    raise UpdateFailed("the server refused the download: %s" % chunk["error"])
                piece = base64.b64decode(chunk.get("data", ""))
                if not piece or len(piece) > length:
                    raise UpdateFailed("the server sent %d bytes at offset %d, asked for %d" % (len(piece), offset, length))
                return piece
        raise UpdateFailed("no answer from the server for the bytes at offset %d" % offset)

    def _verify(self, data: Dict[str, Any], staged: str, staging: str) -> None:
        import hashlib
        with open(staged, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != data["sha256"]:
            raise UpdateFailed("sha256 mismatch: got %s, expected %s" % (digest, data["sha256"]))
        key = self._pinned_key()
        key_file, sig_file = os.path.join(staging, "update-key.pem"), os.path.join(staging, "signature")
        write_atomic(key_file, key, 0o600)
        with open(sig_file, "wb") as f:
            f.write(base64.b64decode(data["signature"]))
        code, out, err = run_program(["openssl", "dgst", "-sha256", "-verify", key_file, "-signature", sig_file, staged], 60)
        if code != 0:
            why = (err or out).decode("utf-8", "replace").strip().splitlines()
            raise UpdateFailed("bad signature: the file is not signed by this server's update key (%s)" % (why[0] if why else "openssl %d" % code))
        # The signature covers the bytes, not the version name: an older signed file sent again
        # under a newer name must not pass, so the file's own AGENT_VERSION has to match.
        with open(staged, "rb") as f:
            named = re.search(rb'^AGENT_VERSION = "([^"\n]{1,64})"$', f.read(), re.MULTILINE)
        inside = named.group(1).decode("utf-8", "replace") if named else "(none)"
        if inside != data["version"]:
            raise UpdateFailed("the file says it is version %s, not %s: refused (an older signed file sent again?)" % (inside, data["version"]))

    def _pin_path(self) -> str:
        return os.path.join(self.agent.config.state_dir, "update-key.pem")

    def _pin_first_key(self) -> None:
        """At the welcome, not at the first update: a server that later turns hostile (or one
        impersonated later) cannot get its own key pinned by being the first to send an update."""
        key = self.agent.update_key
        if "PUBLIC KEY-----" not in key or read_optional(self._pin_path()):
            return
        try:
            write_atomic(self._pin_path(), key, 0o600)
        except OSError as e:
            log("WARN", "cannot pin the server's update key in %s: %s" % (self._pin_path(), e))

    def _pinned_key(self) -> str:
        """The server's update key as pinned on first sight (state_dir/update-key.pem)."""
        pinned = self._pin_path()
        key = read_optional(pinned)
        if not key:
            if "PUBLIC KEY-----" not in self.agent.update_key:
                raise UpdateFailed("the server sent no update key: cannot check the signature")
            write_atomic(pinned, self.agent.update_key, 0o600)
            return self.agent.update_key
        if self.agent.update_key and self.agent.update_key.strip() != key.strip():
            raise UpdateFailed("the server's update key differs from the one pinned in %s: remove that file if the key was changed on purpose" % pinned)
        return key

    def _selftest(self, staged: str, staging: str) -> None:
        code, _, err = run_program([sys.executable, "-c", "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
                                    staged, os.path.join(staging, "compiled.pyc")], UPDATE_STEP_TIMEOUT_S)
        if code != 0:
            raise UpdateFailed("the new file does not compile: %s" % last_line(err))
        code, _, err = run_program([sys.executable, staged, "--selftest", "--config", self.agent.config.path], UPDATE_STEP_TIMEOUT_S)
        if code != 0:
            raise UpdateFailed("the new file failed its --selftest (exit %d): %s" % (code, last_line(err)))

    def _switch(self, data: Dict[str, Any], staging: str) -> None:
        """Stages versions/<v>/, records the trial, then flips the entry link: until the flip
        the old version stays what the unit starts."""
        self.report(dict(data, step="switch"))
        previous = self._running_file()
        target = os.path.join(self.paths.versions, data["version"])
        if os.path.isdir(target):
            self._remove_tree(target)
        os.chmod(os.path.join(staging, AGENT_FILE), 0o644)
        for name in ("update-key.pem", "signature", "compiled.pyc"):
            if os.path.lexists(os.path.join(staging, name)):
                os.unlink(os.path.join(staging, name))
        os.rename(staging, target)
        os.chmod(target, 0o755)
        config = self.agent.config
        write_atomic(self.paths.trial, json.dumps({
            "update_id": data["update_id"], "version": data["version"], "previous": previous, "state": "switched",
            "hello_s": config.update_hello_timeout_s, "stable_s": config.update_stable_s}), 0o600)
        flip_link(self.paths.entry, self.paths.version_file(data["version"]))

    def _running_file(self) -> str:
        """The file of the running version inside versions/ (copied there on the first update,
        when the entry is still the plain file install.sh wrote)."""
        entry = self.paths.entry
        if os.path.islink(entry) and self.paths.inside_versions(entry):
            return os.path.realpath(entry)
        keep = self.paths.version_file(AGENT_VERSION)
        os.makedirs(os.path.dirname(keep), mode=0o755, exist_ok=True)
        copy_file(entry if os.path.isfile(entry) else os.path.abspath(__file__), keep, 0o644)
        if not os.path.exists(self.paths.guard):
            copy_file(keep, self.paths.guard, 0o644)
        return keep

    @staticmethod
    def _remove_tree(path: str) -> None:
        """A staging or version dir this agent made: plain files and __pycache__, nothing deeper."""
        if not os.path.isdir(path) or os.path.islink(path):
            return
        for name in os.listdir(path):
            inner = os.path.join(path, name)
            if os.path.isdir(inner) and not os.path.islink(inner):
                SelfUpdate._remove_tree(inner)
            else:
                os.unlink(inner)
        os.rmdir(path)

    # ---- the trial of a new version

    def watch_trial(self) -> None:
        """Hello within hello_s and connected stable_s without a break: healthy (the guard file
        becomes this version, the trial ends). Otherwise exit: the guard rolls back at restart."""
        trial = self.trial or {}
        hello_s, stable_s = float(trial.get("hello_s", 60)), float(trial.get("stable_s", 30))
        if not self.agent.connected.wait(hello_s):
            return self._fail_trial("no hello within %d s" % hello_s)
        connected_at = self.agent.connected_at
        if self.agent.stop_event.wait(stable_s):
            return
        if not self.agent.connected.is_set() or self.agent.connected_at != connected_at:
            return self._fail_trial("the connection did not last %d s" % stable_s)
        copy_file(self.paths.entry, self.paths.guard, 0o644)
        os.unlink(self.paths.trial)
        outcome = {"update_id": trial.get("update_id"), "version": AGENT_VERSION, "step": "healthy",
                   "message": "connected for %d s" % stable_s}
        write_atomic(self.paths.outcome, json.dumps(outcome), 0o600)
        self.trial = None
        self.on_connected()
        log("INFO", "version %s is healthy: the update is final" % AGENT_VERSION)
        self.agent.stop_event.wait()

    def _fail_trial(self, why: str) -> None:
        log("ERROR", "version %s on trial failed: %s; exiting so the guard restores the previous one" % (AGENT_VERSION, why))
        sys.stderr.flush()
        os._exit(UPDATE_EXIT_CODE)


def last_line(err: bytes) -> str:
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:300] if lines else "no message"


FEATURES.append(SelfUpdate)

##############################################################################
# Connection: handshake, dispatch, reconnect
##############################################################################

MAX_FRAME_BYTES = PROTOCOL_CONSTANTS["MAX_FRAME_BYTES"]
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
STABLE_CONNECTION_S = 60.0  # a connection that lasted this long starts the backoff over
# Refusals that trying again soon cannot change: the next attempts are spaced out.
REFUSED_FOR_GOOD = {CLOSE["nodeRevoked"]: "node revoked", CLOSE["unknownNode"]: "unknown node", CLOSE["authFailed"]: "bad signature"}
STATUS_INTERVAL_S = 1.0  # agent.status goes out when it changes, at most this often
MEMORY_TRIM_INTERVAL_S = 60.0


def backoff_delay(attempt: int, cap: float = BACKOFF_CAP_S) -> float:
    """Exponential backoff with full jitter: spreads a lab's reconnections after a server restart."""
    return random.uniform(0, min(cap, BACKOFF_BASE_S * (2 ** min(attempt, 16))))


def next_attempt(attempt: int, connected_s: float) -> int:
    """The backoff step after a connection ended: back to the start after one that lasted, so a
    node that was online for hours reconnects at once, not after the 30 s of its first failures."""
    return 0 if connected_s >= STABLE_CONNECTION_S else attempt + 1


def reconnect_delay(attempt: int, close_code: Optional[int]) -> float:
    if close_code in REFUSED_FOR_GOOD:
        return random.uniform(BACKOFF_CAP_S / 2, BACKOFF_CAP_S)
    if close_code == CLOSE["tryAgainLater"]:  # the server is at its connection limit
        return max(backoff_delay(attempt), random.uniform(5.0, 15.0))
    return backoff_delay(attempt)


def next_server(index: int, count: int) -> int:
    """After a failed attempt or an ended connection, the next server of the list: a replica that
    went away is not asked again before the others (all replicas of a lab are equal)."""
    return (index + 1) % count


def message_type(frame: bytes) -> str:
    match = re.match(rb'\{"type":"([a-z0-9_.]{1,64})"', frame)
    return match.group(1).decode("ascii") if match else "?"


class Agent(object):
    """Keeps one connection to the server and hands messages to the features."""

    def __init__(self, config: Config):
        self.config = config
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self.wake_metrics = threading.Event()
        self.status_wake = threading.Event()
        self.ws: Optional[WebSocket] = None
        self.connected_at: Optional[float] = None
        self.max_frame_bytes = MAX_FRAME_BYTES  # the server's, from its welcome
        self.update_key = ""  # the server's update-signing public key, from its welcome
        self.exit_code = 0  # UPDATE_EXIT_CODE once a new version is switched in
        self.last_status = ""
        self.problems = Problems()
        self.log_answers: Dict[str, Inbox] = {}  # batch id -> the inbox of the shipper that sent it
        self.sampler = Sampler(config.proc_root, config.sys_root, config.etc_root)
        self.features = [factory(self) for factory in FEATURES]
        self.handlers: Dict[str, Callable[[Dict[str, Any]], None]] = {
            "config.push": lambda m: self.apply_config(m["data"]),
            "error": self._on_error,
            "logs.ack": self._on_log_answer,
            "logs.nack": self._on_log_answer,
        }
        for feature in self.features:
            self.handlers.update(feature.handlers())
        self.binary_handlers: Dict[int, Callable[[int, bytes], None]] = {}
        for feature in self.features:
            self.binary_handlers.update(feature.binary_handlers())
        self.workers = [Worker(self, "metrics", self._metrics_loop), Worker(self, "status", self._status_loop)]
        self.workers += [Worker(self, name, target) for feature in self.features for name, target in feature.workers().items()]

    @property
    def capabilities(self) -> List[str]:
        caps = ["hardware"]
        for feature in self.features:
            caps.extend(feature.capabilities())
        return caps

    def frame_budget(self) -> int:
        """Bytes of records a log batch may carry: the server's frame limit minus the envelope."""
        return self.max_frame_bytes - BATCH_OVERHEAD_BYTES

    # ---- sending (any thread)

    def send(self, message: Dict[str, Any]) -> bool:
        """Sends a message; False when there is no connection (callers keep their data)."""
        return self.send_frame(encode_json(message))

    def send_frame(self, frame: bytes) -> bool:
        """Sends an encoded message, never one over the server's frame limit: the server would
        close the connection (1009) and the same message would be sent again after reconnecting."""
        ws = self.ws
        if ws is None or not self.connected.is_set():
            return False
        if len(frame) > self.max_frame_bytes:
            self.problems.report("connection.message_too_big", "a %s message of %d bytes was not sent: the server takes at most %d"
                                 % (message_type(frame), len(frame), self.max_frame_bytes))
            return False
        try:
            ws.send_text_bytes(frame)
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

    def status_changed(self) -> None:
        self.status_wake.set()

    # ---- the main loop

    def run(self) -> int:
        for worker in self.workers:
            worker.start()
        attempt, server = 0, 0
        while not self.stop_event.is_set():
            code = None
            self.config.server_url = self.config.server_urls[server]
            try:
                self._connect_and_serve()
            except WebSocketClosed as e:
                code = e.code
                if not self.stop_event.is_set():
                    log("ERROR" if 4000 <= e.code < 5000 else "WARN", "connection closed: %d %s" % (e.code, e.reason))
            except (OSError, ConnectionError, ValueError, RuntimeError) as e:
                log("WARN", "cannot reach %s: %s" % (self.config.server_url, e))
            finally:
                connected_s = self._disconnected()
            if self.stop_event.is_set():
                break
            attempt = next_attempt(attempt, connected_s)
            server = next_server(server, len(self.config.server_urls))
            delay = reconnect_delay(attempt, code)
            log("INFO", "reconnecting to %s in %.1f s" % (self.config.server_urls[server], delay))
            self.stop_event.wait(delay)
        for feature in self.features:
            feature.stop()
        log("INFO", "stopped")
        return self.exit_code

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_metrics.set()
        self.status_wake.set()

    def _connect_and_serve(self) -> None:
        ws = WebSocket.connect(self.config.server_url, timeout=10, ca_file=self.config.tls_ca_file, pin_sha256=self.config.tls_cert_sha256)
        self.ws = ws
        ws.sock.settimeout(None)  # sends block (a dead link is detected by the reader); receives use recv_timeout
        ws.recv_timeout = 10
        self._handshake(ws)
        ws.recv_timeout = 0.5
        self.connected_at = time.monotonic()
        self.last_status = ""
        self.connected.set()
        for feature in self.features:
            feature.on_connected()
        self.wake_metrics.set()
        self.status_changed()
        release_memory()  # what the start and the handshake left behind
        self._serve(ws)

    def _serve(self, ws: WebSocket) -> None:
        """Hands every message to its handler until the agent stops or the link ends."""
        while not self.stop_event.is_set():
            try:
                opcode, payload = ws.recv()
            except socket.timeout:
                # Any bytes count as life, the server's pings included (recv answers those itself).
                if time.monotonic() - ws.last_received > self.config.dead_link_s:
                    raise WebSocketClosed(1006, "nothing from the server for %d s, not even a ping" % self.config.dead_link_s)
                continue
            if opcode == OP_TEXT:
                self._on_text(payload)
            else:
                self._on_binary(payload)
        ws.close(CLOSE["goingAway"], "agent stopping")
        ws.recv_timeout = 2
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
        host: Dict[str, Any] = {}
        COLLECTORS["host"](self.sampler, host)
        ws.send_text_bytes(encode_json({"type": "hello", "data": {
            "node_id": self.config.node_id, "nonce": nonce, "signature": signature, "protocol": PROTOCOL_VERSION,
            "agent_version": AGENT_VERSION, "capabilities": self.capabilities, "host": host["host"], "max_frame_bytes": ws.max_message}}))
        welcome = self._receive_json(ws)
        problem = validate_message(welcome, "server-to-agent")
        if problem or welcome["type"] != "welcome":
            raise ConnectionError("expected a welcome from the server: %s" % (problem or welcome["type"]))
        self.max_frame_bytes = int(welcome["data"].get("max_frame_bytes", MAX_FRAME_BYTES))
        self.apply_config(welcome["data"]["config"])
        self.update_key = str(welcome["data"].get("update_key", ""))
        log("INFO", "connected to %s as %s (%s)" % (self.config.server_url, welcome["data"]["name"], self.config.node_id))

    @staticmethod
    def _receive_json(ws: WebSocket) -> Dict[str, Any]:
        opcode, payload = ws.recv()
        if opcode != OP_TEXT:
            raise ConnectionError("expected a text frame during the handshake")
        try:
            return parse_json(payload.decode("utf-8"))
        except ValueError:
            raise ConnectionError("the server sent invalid JSON during the handshake")

    def _disconnected(self) -> float:
        """Ends the connection's state; returns how long it was connected (0 when it never was)."""
        was_connected = self.connected.is_set()
        self.connected.clear()
        connected_s = time.monotonic() - self.connected_at if self.connected_at is not None else 0.0
        self.connected_at = None
        if self.ws is not None:
            self.ws.shutdown()
        self.ws = None
        if was_connected:
            for feature in self.features:
                feature.on_disconnected()
        return connected_s

    # ---- receiving

    def _on_text(self, payload: bytes) -> None:
        try:
            message = parse_json(payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
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
        if handler is None:
            self.send(dict(reply, type="error", data={"code": "unsupported", "ref_type": message["type"],
                                                        "message": "this agent does not support %s" % message["type"]}))
            return
        try:
            handler(message)
        except Exception as e:  # one failing request must not take the connection down
            log("ERROR", "handling %s failed: %s: %s" % (message["type"], type(e).__name__, e))
            self.send(dict(reply, type="error", data={"code": "internal_error", "ref_type": message["type"], "message": str(e)[:1024]}))

    def _on_log_answer(self, message: Dict[str, Any]) -> None:
        """logs.ack / logs.nack: to the shipper that sent the batch (an unknown id is an answer
        to a batch sent again since, or sent before the agent restarted)."""
        inbox = self.log_answers.get(message["id"])
        if inbox is not None:
            inbox.put(message)

    def _on_error(self, message: Dict[str, Any]) -> None:
        if message.get("id") in self.log_answers:
            self._on_log_answer(message)  # the server could not take a log batch at all
            return
        log("WARN", "server reported %s: %s" % (message["data"]["code"], message["data"]["message"]))

    def _on_binary(self, payload: bytes) -> None:
        frame = decode_binary_frame(payload)
        handler = self.binary_handlers.get(frame[0]) if frame else None
        if frame is None or handler is None:
            self.send({"type": "error", "data": {"code": "invalid_message", "message": "binary frame refused"}})
            return
        handler(frame[1], frame[2])

    # ---- hardware state and the agent's own status

    def _metrics_loop(self) -> None:
        trimmed = time.monotonic()
        while not self.stop_event.is_set():
            self.wake_metrics.clear()
            if self.connected.is_set():
                state = self.sampler.sample(self.config.metrics_interval_s)
                self.send({"type": "hardware.state", "data": state})
            if time.monotonic() - trimmed > MEMORY_TRIM_INTERVAL_S:
                release_memory()
                trimmed = time.monotonic()
            self.wake_metrics.wait(self.config.metrics_interval_s)

    def status_data(self) -> Dict[str, Any]:
        """agent.status: workers, problems, log files and system logs."""
        data: Dict[str, Any] = {"workers": [w.status() for w in self.workers][:32], "problems": self.problems.snapshot()}
        for feature in self.features:
            feature.status(data)
        return data

    def _status_loop(self) -> None:
        """Sends agent.status after the welcome and whenever it changes, at most once a second.
        The bytes buffered change all the time: alone they do not make a new status."""
        while not self.stop_event.is_set():
            self.status_wake.wait(STATUS_INTERVAL_S)
            self.status_wake.clear()
            if not self.connected.is_set():
                continue
            data = self.status_data()
            steady = dict(data, log_files=dict(data.get("log_files", {}), buffered_bytes=0))
            key = json.dumps(steady, sort_keys=True)
            if key != self.last_status and self.send_frame(fit_status(data, self.max_frame_bytes)):
                self.last_status = key
                self.stop_event.wait(STATUS_INTERVAL_S)



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
       dvic_agent.py --selftest --config PATH   load the config and the schemas, build the agent, exit 0
       dvic_agent.py --guard ROOT [UNIT]   before a start: roll back a version that failed its trial
       dvic_agent.py --print-state [--proc-root DIR] [--sys-root DIR] [--etc-root DIR]
       dvic_agent.py --version
"""


def config_from_args(args: List[str], who: str) -> Optional[Config]:
    """The config of "--config PATH", or None after saying what is wrong (exit code 2)."""
    if len(args) != 2 or args[0] != "--config":
        sys.stderr.write(USAGE)
        return None
    try:
        return load_config(args[1])
    except ConfigError as e:
        sys.stderr.write("%s: %s\n" % (who, e))
        return None


def selftest(args: List[str]) -> int:
    """What a new version must pass before it is switched in: its config loads, every embedded
    schema resolves and checks a message, and the agent with all its features can be built."""
    config = config_from_args(args, "dvic-agent selftest")
    if config is None:
        return 2
    problem = validate_message({"type": "update.status", "data": {"update_id": "selftest", "version": AGENT_VERSION, "step": "selftest"}},
                               "agent-to-server")
    if problem:
        sys.stderr.write("dvic-agent selftest: schemas: %s\n" % problem)
        return 1
    Agent(config)
    sys.stdout.write("dvic-agent %s selftest ok\n" % AGENT_VERSION)
    return 0


def run_and_exit(agent: Agent) -> None:
    """The connection thread: ends the process with the agent's exit code (the restart code after an update)."""
    code = agent.run()
    if code:
        sys.stderr.flush()
        os._exit(code)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals(agent: Agent) -> None:
    """SIGTERM and SIGINT stop the agent, whenever they come. Python runs a signal's handler only
    in the main thread: between two bytecodes, or when the signal interrupts the call it blocks
    in. Once the script has returned (see the end of this file), the main thread waits in the
    interpreter's shutdown for the connection thread: a signal whose C handler ran just before
    that wait blocked (the main thread preempted on its way in) or in another thread never wakes
    it, its handler never runs, and the agent ran on. So the C handler also writes the signal's
    number to a pipe (signal.set_wakeup_fd), whichever thread it ran in, and a thread reading that
    pipe stops the agent (stop() twice is harmless). Call from the main thread."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    # A forked child (pty.fork, preexec_fn) runs Python with our handlers until it execs: a signal
    # it receives then must not stop its parent through the shared pipe.
    os.register_at_fork(after_in_child=lambda: signal.set_wakeup_fd(-1))
    threading.Thread(target=_stop_on_wakeups, args=(agent, read_fd), name="signals", daemon=True).start()
    for number in STOP_SIGNALS:
        signal.signal(number, lambda *_: agent.stop())


def _stop_on_wakeups(agent: Agent, read_fd: int) -> None:
    while True:
        numbers = os.read(read_fd, 64)
        if not numbers:
            return
        if any(int(number) in numbers for number in STOP_SIGNALS):
            agent.stop()


def main(argv: Optional[List[str]] = None, in_thread: bool = False) -> int:
    """Runs the agent (or another command). in_thread: the agent runs in a thread of its own and
    this returns at once with 0, see the end of this file; configuration errors still return 2."""
    args = sys.argv[1:] if argv is None else argv
    if "--version" in args:
        sys.stdout.write("dvic-agent %s (protocol %d)\n" % (AGENT_VERSION, PROTOCOL_VERSION))
        return 0
    if "--print-state" in args:
        return print_state(args)
    if len(args) in (2, 3) and args[0] == "--guard":
        return run_guard(args[1], args[2] if len(args) == 3 else "")
    if len(args) == 4 and args[0] == "--trial-deadline":
        return run_trial_deadline(args[1], args[2], args[3])
    if len(args) == 3 and args[0] == "--selftest":
        return selftest(args[1:])
    config = config_from_args(args, "dvic-agent")
    if config is None:
        return 2
    try:
        os.makedirs(config.state_dir, mode=0o700, exist_ok=True)
    except OSError as e:
        sys.stderr.write("dvic-agent: cannot create state dir %s: %s\n" % (config.state_dir, e.strerror))
        return 2
    agent = Agent(config)
    stop_on_signals(agent)
    log("INFO", "dvic-agent %s starting, server %s" % (AGENT_VERSION, " or ".join(config.server_urls)))
    if in_thread:
        threading.Thread(target=run_and_exit, args=(agent,), name="connection").start()  # not a daemon: the process waits for it
        return 0
    return agent.run()


if __name__ == "__main__":
    # CPython frees the parse tree of a script (9 MiB for this file) only once the script's top
    # level returns: the agent runs in a thread, this returns, and the process waits for it.
    # The main thread runs signal handlers while it waits, but can miss one: see stop_on_signals().
    exit_code = main(in_thread=True)
    if exit_code:
        sys.exit(exit_code)
