"""dvic_log: write DVIC demo logs from Python (stdlib only, Python >= 3.8).

    import dvic_log
    log = dvic_log.open(demo="face-tracker")
    log.info("camera ready", camera="usb-0")

Records go to /tmp/dvic_log_<token> (or $DVIC_LOG_DIR), one JSON line each, where the DVIC
agent picks them up. Existing `logging` code works through dvic_log.Handler. The file format
is docs/log-format.md of the DVIC repository.
"""

from __future__ import annotations

import base64
import getpass
import json
import logging
import os
import socket
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

__version__ = "0.1.0"
__all__ = ["open", "Logger", "Handler", "format_header", "format_record", "LEVELS"]

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
HEADER_KEYS = ("dvic_log", "token", "generation", "demo", "pid", "start_time", "exe", "argv",
               "user", "uid", "hostname", "lang", "lib_version", "started_at")


# ---- formatting (pure, byte-identical across the DVIC libraries) ------------------------

def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def format_header(header: Dict[str, Any]) -> str:
    """The header line (without newline), keys in the documented order."""
    return _dumps(dict((k, header[k]) for k in HEADER_KEYS if k in header))


def format_record(ts: str, level: str, message: str, fields: Optional[Dict[str, Any]] = None) -> str:
    """A record line (without newline)."""
    record: Dict[str, Any] = {"ts": ts, "level": level, "message": message}
    if fields:
        record["fields"] = fields
    return _dumps(record)


def iso_now(ts: Optional[float] = None) -> str:
    """RFC 3339 UTC with milliseconds."""
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % (int(ts * 1000) % 1000)


# ---- process facts for the header --------------------------------------------------------

def process_facts(pid: int, argv: Optional[List[str]] = None, exe: Optional[str] = None) -> Dict[str, Any]:
    """pid, start time (field 22 of /proc/<pid>/stat), executable and command line of a process."""
    facts: Dict[str, Any] = {"pid": pid}
    try:
        with _open_bytes("/proc/%d/stat" % pid) as f:
            stat = f.read().decode("utf-8", "replace")
        facts["start_time"] = int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        pass
    try:
        facts["exe"] = exe or os.readlink("/proc/%d/exe" % pid)
    except OSError:
        facts["exe"] = exe or sys.executable
    facts["argv"] = list(argv) if argv is not None else [sys.executable] + sys.argv
    return facts


def _open_bytes(path: str):
    return _builtin_open(path, "rb")


_builtin_open = open


def _user() -> Dict[str, Any]:
    uid = os.getuid()
    try:
        import pwd
        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        name = getpass.getuser()
    return {"user": name, "uid": uid}


def _new_token() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("=")


# ---- the logger --------------------------------------------------------------------------

class Logger(object):
    """Appends records to one demo log file. Thread- and fork-safe: every record is a single
    write() on an O_APPEND descriptor, so lines from threads or child processes never mix."""

    def __init__(self, demo: str, private: bool = False, max_bytes: int = DEFAULT_MAX_BYTES,
                 directory: Optional[str] = None, lang: str = "python", process: Optional[Dict[str, Any]] = None):
        self.demo = demo
        self.mode = 0o600 if private else 0o644
        self.max_bytes = max_bytes
        self.directory = directory or os.environ.get("DVIC_LOG_DIR") or "/tmp"
        self.token = _new_token()
        self.path = os.path.join(self.directory, "dvic_log_" + self.token)
        self.generation = 0
        self.lock = threading.Lock()
        self.header: Dict[str, Any] = {"dvic_log": 1, "token": self.token, "demo": demo}
        self.header.update(process or process_facts(os.getpid()))
        self.header.update(_user())
        self.header.update({"hostname": socket.gethostname(), "lang": lang, "lib_version": __version__, "started_at": iso_now()})
        self.fd: Optional[int] = self._create()
        self.size = os.fstat(self.fd).st_size

    def _create(self) -> int:
        """A new file (never an existing path: O_EXCL), the header as its first line."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), self.mode)
        os.fchmod(fd, self.mode)  # the umask must not make a shared log private, or the reverse
        header = dict(self.header, generation=self.generation)
        os.write(fd, (format_header(header) + "\n").encode("utf-8"))
        return fd

    def log(self, level: str, message: Any, fields: Optional[Dict[str, Any]] = None) -> None:
        if level not in LEVELS:
            raise ValueError("level must be one of %s" % ", ".join(LEVELS))
        line = (format_record(iso_now(), level, str(message), fields) + "\n").encode("utf-8")
        with self.lock:
            if self.fd is None:
                raise ValueError("log is closed")
            os.write(self.fd, line)
            self.size += len(line)
            if self.size > self.max_bytes:
                self._rotate()

    def _rotate(self) -> None:
        """Keeps one old file (.1). The agent follows the renamed file from its descriptor, so
        lines written just before the rename are not lost."""
        assert self.fd is not None
        self.size = os.fstat(self.fd).st_size  # forked children may have written too
        if self.size <= self.max_bytes:
            return
        os.replace(self.path, self.path + ".1")
        old, self.generation = self.fd, self.generation + 1
        self.fd = self._create()
        self.size = os.fstat(self.fd).st_size
        os.close(old)

    def trace(self, message: Any, **fields: Any) -> None:
        self.log("TRACE", message, fields)

    def debug(self, message: Any, **fields: Any) -> None:
        self.log("DEBUG", message, fields)

    def info(self, message: Any, **fields: Any) -> None:
        self.log("INFO", message, fields)

    def warn(self, message: Any, **fields: Any) -> None:
        self.log("WARN", message, fields)

    warning = warn

    def error(self, message: Any, **fields: Any) -> None:
        self.log("ERROR", message, fields)

    def fatal(self, message: Any, **fields: Any) -> None:
        self.log("FATAL", message, fields)

    def close(self) -> None:
        with self.lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None

    def __enter__(self) -> "Logger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open(demo: str, private: bool = False, max_bytes: int = DEFAULT_MAX_BYTES, directory: Optional[str] = None) -> Logger:  # noqa: A001
    """Creates /tmp/dvic_log_<token> for this demo and returns its logger."""
    return Logger(demo, private=private, max_bytes=max_bytes, directory=directory)


# ---- logging integration -----------------------------------------------------------------

def level_for(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "FATAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARN"
    if levelno >= logging.INFO:
        return "INFO"
    if levelno >= logging.DEBUG:
        return "DEBUG"
    return "TRACE"


class Handler(logging.Handler):
    """A logging.Handler writing to a DVIC demo log:

        logging.basicConfig(level=logging.INFO, handlers=[dvic_log.Handler(demo="face-tracker")])
    """

    def __init__(self, demo: Optional[str] = None, logger: Optional[Logger] = None, level: int = logging.NOTSET, **options: Any):
        logging.Handler.__init__(self, level)
        if logger is None and demo is None:
            raise ValueError("give demo= or logger=")
        self.dvic = logger or Logger(demo or "", **options)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            if record.stack_info:
                message += "\n" + record.stack_info
            self.dvic.log(level_for(record.levelno), message, {"logger": record.name} if record.name != "root" else None)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.dvic.close()
        logging.Handler.close(self)


# ---- the wrapper: dvic-log --demo NAME -- cmd args... ------------------------------------

LEVEL_WORD = None  # compiled on first use


def split_level(line: str, default: str) -> "tuple[str, str]":
    """A leading level word ("WARN ...", "[ERROR] ...", "error: ...") -> (level, rest)."""
    global LEVEL_WORD
    if LEVEL_WORD is None:
        import re
        LEVEL_WORD = re.compile(r"^\s*\[?(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL)\]?:?(?:\s+|$)(.*)$", re.IGNORECASE | re.DOTALL)
    match = LEVEL_WORD.match(line)
    if not match:
        return default, line
    word = match.group(1).upper()
    return {"WARNING": "WARN", "ERR": "ERROR", "CRITICAL": "FATAL"}.get(word, word), match.group(2)


WRAPPER_USAGE = "usage: dvic-log --demo NAME [--private] [--max-bytes N] [--quiet] -- command [args...]\n"
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def wrapper_main(argv: Optional[List[str]] = None) -> int:
    """Runs a command unchanged, turning its stdout lines into INFO records and its stderr
    lines into ERROR records (or the level a line starts with). Forwards signals; exits with
    the command's exit code (128 + signal when it was killed)."""
    import shutil
    import signal
    import subprocess
    args = sys.argv[1:] if argv is None else argv
    if "--" not in args:
        sys.stderr.write(WRAPPER_USAGE)
        return 2
    options, command = args[:args.index("--")], args[args.index("--") + 1:]
    demo, private, quiet, max_bytes = None, False, False, DEFAULT_MAX_BYTES
    i = 0
    while i < len(options):
        if options[i] == "--demo" and i + 1 < len(options):
            demo, i = options[i + 1], i + 2
        elif options[i] == "--max-bytes" and i + 1 < len(options) and options[i + 1].isdigit():
            max_bytes, i = int(options[i + 1]), i + 2
        elif options[i] in ("--private", "--quiet"):
            private, quiet = private or options[i] == "--private", quiet or options[i] == "--quiet"
            i += 1
        else:
            sys.stderr.write("dvic-log: unknown option %s\n%s" % (options[i], WRAPPER_USAGE))
            return 2
    if not demo or not command:
        sys.stderr.write(WRAPPER_USAGE)
        return 2
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        sys.stderr.write("dvic-log: cannot run %s: %s\n" % (command[0], e.strerror))
        return 127
    logger = Logger(demo, private=private, max_bytes=max_bytes, lang="wrapper",
                    process=process_facts(child.pid, command, shutil.which(command[0]) or command[0]))
    for name in FORWARDED_SIGNALS:
        signal.signal(getattr(signal, name), lambda signum, _frame: child.send_signal(signum))
    pumps = [threading.Thread(target=_pump, args=(child.stdout, "INFO", logger, None if quiet else sys.stdout.buffer)),
             threading.Thread(target=_pump, args=(child.stderr, "ERROR", logger, None if quiet else sys.stderr.buffer))]
    for pump in pumps:
        pump.start()
    code = child.wait()
    for pump in pumps:
        pump.join()
    logger.close()
    return code if code >= 0 else 128 - code


def _pump(stream: Any, default: str, logger: Logger, echo: Any) -> None:
    for raw in iter(stream.readline, b""):
        if echo is not None:
            echo.write(raw)
            echo.flush()
        level, message = split_level(raw.decode("utf-8", "replace").rstrip("\r\n"), default)
        logger.log(level, message)
    stream.close()


if __name__ == "__main__":
    sys.exit(wrapper_main())
