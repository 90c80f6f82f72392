"""dvic_log: write DVIC demo logs from Python (stdlib only, Python >= 3.8).

    import dvic_log
    log = dvic_log.open(demo="face-tracker")
    log.info("camera ready", camera="usb-0")

Records go to /tmp/dvic_log_<token> (or $DVIC_LOG_DIR), one JSON line each, where the DVIC
agent picks them up. Existing `logging` code works through dvic_log.Handler. The file format
is docs/log-format.md of the DVIC repository.
"""

from __future__ import annotations

import atexit
import base64
import fcntl
import getpass
import json
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import threading
import time
import weakref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

__version__ = "0.2.0"
__all__ = ["open", "Logger", "Handler", "format_header", "format_record", "LEVELS"]

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 4
HEADER_KEYS = ("dvic_log", "token", "generation", "records_before", "demo", "pid", "start_time", "exe", "argv",
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


def closing_record(ts: str, ended: str, exit_code: Optional[int] = None) -> str:
    """The last record of a run: ended is "exited" (a normal exit, with its code when known) or
    "killed" (SIGTERM, SIGINT or SIGHUP)."""
    fields: Dict[str, Any] = {"dvic_end": ended}
    if exit_code is not None:
        fields["exit_code"] = exit_code
    return format_record(ts, "INFO", "demo %s" % ended, fields)


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

def max_files_setting(max_files: Optional[int]) -> int:
    """Rotated files to keep: the program's choice, else $DVIC_LOG_MAX_FILES, else 4."""
    if max_files is None:
        env = os.environ.get("DVIC_LOG_MAX_FILES", "")
        return int(env) if env.isascii() and env.isdigit() else DEFAULT_MAX_FILES
    if max_files < 0:
        raise ValueError("max_files must be >= 0")
    return max_files


class _Shared(object):
    """The counters of a log shared by a process and its forked children, in a memfd they all
    map, with an fcntl lock on it (the kernel releases it when its holder dies)."""

    COUNTERS = struct.Struct("<5q")  # generation, records_before, records, size, first_kept

    def __init__(self, counters: Tuple[int, ...]):
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("dvic_log")
        else:  # a Python built on a C library without memfd: an unlinked temporary file
            import tempfile
            with tempfile.TemporaryFile() as f:
                self.fd = os.dup(f.fileno())
        try:
            os.ftruncate(self.fd, self.COUNTERS.size)
            self.map = mmap.mmap(self.fd, self.COUNTERS.size)
        except OSError:
            os.close(self.fd)
            raise
        self.COUNTERS.pack_into(self.map, 0, *counters)

    def acquire(self) -> Tuple[int, ...]:
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        return self.COUNTERS.unpack_from(self.map)

    def release(self, counters: Tuple[int, ...]) -> None:
        self.COUNTERS.pack_into(self.map, 0, *counters)
        fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)


class Logger(object):
    """Appends records to one demo log file and rotates it (docs/log-format.md, Rotation).
    Thread- and fork-safe: every record is a single write() on an O_APPEND descriptor, so lines
    from threads or child processes never mix; once the process forks, the processes share the
    counters and rotate under one lock, so records_before stays exact."""

    def __init__(self, demo: str, private: bool = False, max_bytes: int = DEFAULT_MAX_BYTES,
                 directory: Optional[str] = None, lang: str = "python", process: Optional[Dict[str, Any]] = None,
                 max_files: Optional[int] = None):
        self.demo = demo
        self.mode = 0o600 if private else 0o644
        self.max_bytes = max_bytes
        self.max_files = max_files_setting(max_files)
        self.directory = directory or os.environ.get("DVIC_LOG_DIR") or "/tmp"
        self.token = _new_token()
        self.path = os.path.join(self.directory, "dvic_log_" + self.token)
        # The counters: the live file's generation and records_before, the records and bytes in
        # it, and the oldest rotated generation that may still be on disk.
        self.generation = self.records_before = self.records = self.size = self.first_kept = 0
        self.fd_generation = 0  # the generation self.fd writes to
        self.lock = threading.Lock()
        self.shared: Optional[_Shared] = None
        self.header: Dict[str, Any] = {"dvic_log": 1, "token": self.token, "demo": demo}
        self.header.update(process or process_facts(os.getpid()))
        self.header.update(_user())
        self.header.update({"hostname": socket.gethostname(), "lang": lang, "lib_version": __version__, "started_at": iso_now()})
        self.fd: Optional[int] = self._create()
        self.owner_pid = os.getpid()  # a forked child does not end this demo's run
        _LOGGERS.add(self)
        _watch_exit()

    def _create(self) -> int:
        """A new live file (never an existing path: O_EXCL), the header as its first line."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), self.mode)
        os.fchmod(fd, self.mode)  # the umask must not make a shared log private, or the reverse
        header = dict(self.header, generation=self.generation, records_before=self.records_before)
        self.size = os.write(fd, (format_header(header) + "\n").encode("utf-8"))
        self.fd_generation = self.generation
        return fd

    def log(self, level: str, message: Any, fields: Optional[Dict[str, Any]] = None) -> None:
        if level not in LEVELS:
            raise ValueError("level must be one of %s" % ", ".join(LEVELS))
        line = (format_record(iso_now(), level, str(message), fields) + "\n").encode("utf-8")
        with self.lock:
            if self.fd is None:
                raise ValueError("log is closed")
            shared = self.shared
            if shared is None:
                self._append(line)
                return
            self._adopt(shared.acquire())
            try:
                self._append(line)
            finally:
                shared.release(self._counters())

    def _append(self, line: bytes) -> None:
        assert self.fd is not None
        if self.fd_generation != self.generation:  # another process rotated the file
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
            os.close(self.fd)
            self.fd, self.fd_generation = fd, self.generation
        os.write(self.fd, line)
        self.records += 1
        self.size += len(line)
        if self.size > self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        """The live file becomes .<generation>; the agent finishes it from its descriptor."""
        rotated, old = self.generation, self.fd
        assert old is not None
        os.rename(self.path, "%s.%d" % (self.path, rotated))
        self.generation, self.records_before, self.records = rotated + 1, self.records_before + self.records, 0
        self.fd = self._create()
        os.close(old)
        self._delete_expired(rotated - self.max_files)

    def _delete_expired(self, newest: int) -> None:
        """Deletes the rotated files up to generation `newest`; the agent may have deleted them."""
        for generation in range(self.first_kept, newest + 1):
            try:
                os.unlink("%s.%d" % (self.path, generation))
            except FileNotFoundError:
                pass
            self.first_kept = generation + 1

    def _counters(self) -> Tuple[int, ...]:
        return (self.generation, self.records_before, self.records, self.size, self.first_kept)

    def _adopt(self, counters: Tuple[int, ...]) -> None:
        self.generation, self.records_before, self.records, self.size, self.first_kept = counters

    def share(self) -> None:
        """Called before a fork: from now on the processes writing this log share its counters."""
        if self.shared is None and self.fd is not None:
            try:
                self.shared = _Shared(self._counters())
            except OSError:  # out of memory or descriptors: each process counts on its own
                pass

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

    def close(self, ended: str = "exited", exit_code: Optional[int] = None) -> None:
        """Ends the log with its closing record (docs/log-format.md, "Closing record"): the server
        then knows the demo stopped cleanly instead of crashing."""
        # From a SIGTERM handler the interrupted thread may hold the lock: one write() with
        # O_APPEND never mixes with another line, so the record goes out without it.
        locked = self.lock.acquire(timeout=1)
        try:
            fd = self.fd
            if fd is not None and self.owner_pid == os.getpid():
                try:
                    os.write(fd, (closing_record(iso_now(), ended, exit_code) + "\n").encode("utf-8"))
                except OSError:
                    pass  # a full disk: the demo is then seen as vanished
            if fd is not None:
                self.fd = None
                os.close(fd)
            if self.shared is not None:
                self.shared.close()
                self.shared = None
        finally:
            if locked:
                self.lock.release()

    def __enter__(self) -> "Logger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open(demo: str, private: bool = False, max_bytes: int = DEFAULT_MAX_BYTES, directory: Optional[str] = None,  # noqa: A001
         max_files: Optional[int] = None) -> Logger:
    """Creates /tmp/dvic_log_<token> for this demo and returns its logger. Past max_bytes the file
    rotates; max_files rotated files are kept (default: $DVIC_LOG_MAX_FILES, else 4)."""
    return Logger(demo, private=private, max_bytes=max_bytes, directory=directory, max_files=max_files)


# A fork copies each logger with its lock: hold the locks across the fork (a child never
# inherits one held by another thread), and share each log's counters with the child.
_LOGGERS: "weakref.WeakSet[Logger]" = weakref.WeakSet()
_FORKING: List[Logger] = []


def _before_fork() -> None:
    _FORKING[:] = list(_LOGGERS)
    for logger in _FORKING:
        logger.lock.acquire()
        logger.share()


def _after_fork() -> None:
    for logger in _FORKING:
        logger.lock.release()
    del _FORKING[:]


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)


# ---- the closing record on exit -----------------------------------------------------------
# A normal exit closes every open log with "exited" (code 1 after an uncaught exception), and
# SIGTERM with "killed" when the program left SIGTERM alone; a demo that dies any other way
# writes nothing, and the server sees it crashed.
_EXIT = {"watching": False, "code": None}  # type: Dict[str, Any]


def _close_all(ended: str, exit_code: Optional[int]) -> None:
    for logger in list(_LOGGERS):
        logger.close(ended, exit_code)


def _on_uncaught(kind: Any, value: Any, tb: Any) -> None:
    _EXIT["code"] = 1
    _PREVIOUS_EXCEPTHOOK[0](kind, value, tb)


def _on_sigterm(signum: int, _frame: Any) -> None:
    _close_all("killed", None)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


_PREVIOUS_EXCEPTHOOK = [sys.excepthook]


def _watch_exit() -> None:
    if _EXIT["watching"]:
        return
    _EXIT["watching"] = True
    atexit.register(lambda: _close_all("exited", _EXIT["code"]))
    _PREVIOUS_EXCEPTHOOK[0] = sys.excepthook
    sys.excepthook = _on_uncaught
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:
        pass  # not the main thread: SIGTERM keeps its default


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


WRAPPER_USAGE = "usage: dvic-log --demo NAME [--private] [--max-bytes N] [--max-files K] [--quiet] -- command [args...]\n"
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def wrapper_main(argv: Optional[List[str]] = None) -> int:
    """Runs a command unchanged, turning its stdout lines into INFO records and its stderr
    lines into ERROR records (or the level a line starts with). Forwards signals; exits with
    the command's exit code (128 + signal when it was killed)."""
    import shutil
    import subprocess
    args = sys.argv[1:] if argv is None else argv
    if "--" not in args:
        sys.stderr.write(WRAPPER_USAGE)
        return 2
    options, command = args[:args.index("--")], args[args.index("--") + 1:]
    demo, private, quiet = None, False, False
    limits: Dict[str, int] = {}  # max_bytes, max_files
    i = 0
    while i < len(options):
        if options[i] == "--demo" and i + 1 < len(options):
            demo, i = options[i + 1], i + 2
        elif options[i] in ("--max-bytes", "--max-files") and i + 1 < len(options) and options[i + 1].isdigit():
            limits[options[i][2:].replace("-", "_")], i = int(options[i + 1]), i + 2
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
    logger = Logger(demo, private=private, max_bytes=limits.get("max_bytes", DEFAULT_MAX_BYTES), max_files=limits.get("max_files"),
                    lang="wrapper", process=process_facts(child.pid, command, shutil.which(command[0]) or command[0]))
    for name in FORWARDED_SIGNALS:
        signal.signal(getattr(signal, name), lambda signum, _frame: child.send_signal(signum))
    pumps = [threading.Thread(target=_pump, args=(child.stdout, "INFO", logger, None if quiet else sys.stdout.buffer)),
             threading.Thread(target=_pump, args=(child.stderr, "ERROR", logger, None if quiet else sys.stderr.buffer))]
    for pump in pumps:
        pump.start()
    code = child.wait()
    for pump in pumps:
        pump.join()
    # Asked to stop (TERM, INT, HUP): a clean stop; any other signal (KILL, SEGV) is a crash.
    stopped = code < 0 and -code in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    exit_code = code if code >= 0 else 128 - code
    logger.close("killed" if stopped else "exited", exit_code)
    return exit_code


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
