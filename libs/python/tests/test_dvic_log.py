"""libs/python/dvic_log.py and the dvic-log wrapper, on real files and real processes."""
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON_LIB_DIR = os.path.dirname(TESTS_DIR)
LIBS_DIR = os.path.dirname(PYTHON_LIB_DIR)
REPO_DIR = os.path.dirname(LIBS_DIR)
WRAPPER = os.path.join(PYTHON_LIB_DIR, "dvic-log")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
sys.path.insert(0, PYTHON_LIB_DIR)

import dvic_log  # noqa: E402


def read_lines(path):
    """(header, [records]) of a log file; every line must be one JSON object."""
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f.read().splitlines()]
    return lines[0], lines[1:]


def load_vectors():
    with open(os.path.join(REPO_DIR, "protocol", "vectors", "logs", "format.json"), encoding="utf-8") as f:
        return json.load(f)


class FormatTest(unittest.TestCase):
    def test_records_are_byte_identical_to_the_vectors(self):
        for case in load_vectors()["records"]:
            with self.subTest(case=case["description"]):
                r = case["input"]
                self.assertEqual(dvic_log.format_record(r["ts"], r["level"], r["message"], r.get("fields")), case["line"])

    def test_headers_are_byte_identical_to_the_vectors(self):
        for case in load_vectors()["headers"]:
            with self.subTest(case=case["description"]):
                shuffled = dict(reversed(list(case["input"].items())))
                self.assertEqual(dvic_log.format_header(shuffled), case["line"])


class LoggerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def open(self, **options):
        log = dvic_log.open(demo="face-tracker", directory=self.dir, **options)
        self.addCleanup(log.close)
        return log

    def test_creates_a_new_file_with_the_header_first(self):
        log = self.open()
        log.info("camera ready", camera="usb-0")
        log.error("frame dropped")
        self.assertRegex(os.path.basename(log.path), r"^dvic_log_[A-Za-z0-9_-]{22}$")
        header, records = read_lines(log.path)
        with open("/proc/self/stat") as f:
            stat = f.read()
        self.assertEqual(header["pid"], os.getpid())
        self.assertEqual(header["start_time"], int(stat[stat.rindex(")") + 2:].split()[19]))
        self.assertEqual(header["exe"], os.readlink("/proc/self/exe"))
        self.assertEqual((header["dvic_log"], header["demo"], header["lang"], header["generation"], header["token"]),
                         (1, "face-tracker", "python", 0, log.token))
        self.assertEqual([(r["level"], r["message"]) for r in records], [("INFO", "camera ready"), ("ERROR", "frame dropped")])
        self.assertEqual(records[0]["fields"], {"camera": "usb-0"})
        self.assertNotIn("fields", records[1])

    def test_file_mode_is_0644_or_0600_whatever_the_umask(self):
        old = os.umask(0o077)
        try:
            shared = self.open()
        finally:
            os.umask(0o000)
        try:
            private = self.open(private=True)
        finally:
            os.umask(old)
        self.assertEqual(os.stat(shared.path).st_mode & 0o777, 0o644)
        self.assertEqual(os.stat(private.path).st_mode & 0o777, 0o600)

    def test_never_writes_into_an_existing_path(self):
        log = self.open()
        log.close()
        with self.assertRaises(FileExistsError):
            os.close(os.open(log.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))

    def test_threads_and_forked_processes_never_interleave_lines(self):
        log = self.open(max_bytes=1 << 30)
        threads = [threading.Thread(target=lambda n=n: [log.info("thread %d line %d %s" % (n, i, "x" * (i % 300))) for i in range(2000)]) for n in range(6)]
        children = []
        for n in range(3):
            pid = os.fork()
            if pid == 0:
                for i in range(2000):
                    log.warn("child %d line %d %s" % (n, i, "y" * (i % 500)))
                os._exit(0)
            children.append(pid)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for pid in children:
            os.waitpid(pid, 0)
        _, records = read_lines(log.path)
        self.assertEqual(len(records), 6 * 2000 + 3 * 2000)
        for n in range(3):
            mine = [int(r["message"].split()[3]) for r in records if r["message"].startswith("child %d " % n)]
            self.assertEqual(mine, list(range(2000)))  # each writer's lines in its own order

    def test_rotates_past_the_size_cap_without_losing_a_line(self):
        log = self.open(max_bytes=64 * 1024)
        for i in range(1000):
            log.info("line %d" % i)
        old_header, old = read_lines(log.path + ".1")
        new_header, new = read_lines(log.path)
        self.assertEqual((old_header["generation"], new_header["generation"]), (0, 1))
        self.assertEqual(old_header["token"], new_header["token"])
        self.assertEqual([r["message"] for r in old + new], ["line %d" % i for i in range(1000)])

    def test_logging_handler_maps_levels_and_keeps_tracebacks(self):
        handler = dvic_log.Handler(demo="legacy", directory=self.dir)
        logger = logging.getLogger("legacy-demo")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        self.addCleanup(logger.removeHandler, handler)
        logger.debug("d")
        logger.warning("w %s", "arg")
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            logger.exception("failed")
        logger.critical("c")
        handler.close()
        _, records = read_lines(handler.dvic.path)
        self.assertEqual([(r["level"], r["message"].splitlines()[0]) for r in records],
                         [("DEBUG", "d"), ("WARN", "w arg"), ("ERROR", "failed"), ("FATAL", "c")])
        self.assertIn("ZeroDivisionError", records[2]["message"])
        self.assertEqual(records[0]["fields"], {"logger": "legacy-demo"})


class WrapperTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.env = dict(os.environ, DVIC_LOG_DIR=self.dir)

    def only_log(self):
        names = [n for n in os.listdir(self.dir) if n.startswith("dvic_log_")]
        self.assertEqual(len(names), 1, names)
        return read_lines(os.path.join(self.dir, names[0]))

    def test_stdout_is_info_stderr_is_error_and_a_leading_level_wins(self):
        script = "echo started; echo oops >&2; echo 'WARN disk at 91%'; echo '[debug] x=1'; echo 'error: no camera' >&2; exit 3"
        result = subprocess.run([PYTHON, WRAPPER, "--demo", "legacy", "--", "sh", "-c", script], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(result.returncode, 3)
        self.assertIn(b"started", result.stdout)  # still echoed
        header, records = self.only_log()
        self.assertEqual((header["lang"], header["demo"], header["argv"]), ("wrapper", "legacy", ["sh", "-c", script]))
        by_level = sorted((r["level"], r["message"]) for r in records)
        self.assertEqual(by_level, sorted([("INFO", "started"), ("ERROR", "oops"), ("WARN", "disk at 91%"), ("DEBUG", "x=1"), ("ERROR", "no camera")]))

    def test_header_names_the_child_process_and_signals_reach_it(self):
        script = "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.05; done"
        proc = subprocess.Popen([PYTHON, WRAPPER, "--demo", "trapper", "--quiet", "--", "sh", "-c", script], env=self.env)
        deadline = time.time() + 10
        while time.time() < deadline:
            names = [n for n in os.listdir(self.dir) if n.startswith("dvic_log_")]
            if names:
                with open(os.path.join(self.dir, names[0])) as f:
                    if len(f.read().splitlines()) >= 2:
                        break
            time.sleep(0.05)
        header, _ = self.only_log()
        self.assertNotEqual(header["pid"], proc.pid)
        with open("/proc/%d/stat" % header["pid"]) as f:
            stat = f.read()
        self.assertEqual(int(stat[stat.rindex(")") + 2:].split()[19]), header["start_time"])
        self.assertIn("(sh)", stat)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)
        _, records = self.only_log()
        self.assertEqual([r["message"] for r in records], ["ready", "got TERM"])

    def test_a_command_killed_by_a_signal_exits_128_plus_the_signal(self):
        result = subprocess.run([PYTHON, WRAPPER, "--demo", "x", "--quiet", "--", "sh", "-c", "kill -9 $$"], env=self.env, timeout=30)
        self.assertEqual(result.returncode, 128 + 9)

    def test_usage_errors_exit_2(self):
        for args in ([], ["--demo", "x"], ["--", "true"], ["--bogus", "--", "true"]):
            result = subprocess.run([PYTHON, WRAPPER] + args, env=self.env, stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(result.returncode, 2, args)
            self.assertIn(b"usage", result.stderr)


if __name__ == "__main__":
    unittest.main()
