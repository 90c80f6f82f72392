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
import unittest.mock

from tests.log_files import (PYTHON_LIB_DIR, check_canonical_bytes, check_generations, dvic_log, expected_files, file_summary,
                              header_problems, load_protocol, load_vectors, read_lines, token_files)

WRAPPER = os.path.join(PYTHON_LIB_DIR, "dvic-log")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


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

    def test_the_header_check_agrees_with_the_schema_vectors(self):
        for case in load_protocol("vectors", "logs", "header.json")["tests"]:
            with self.subTest(case=case["description"]):
                self.assertEqual(header_problems(case["data"]) == [], case["valid"])


def isolated_environment(test):
    """os.environ restored after the test, without DVIC_LOG_MAX_FILES to begin with."""
    patcher = unittest.mock.patch.dict(os.environ)
    patcher.start()
    test.addCleanup(patcher.stop)
    os.environ.pop("DVIC_LOG_MAX_FILES", None)


class LoggerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        isolated_environment(self)

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
        self.assertEqual((header["dvic_log"], header["demo"], header["lang"], header["generation"], header["records_before"], header["token"]),
                         (1, "face-tracker", "python", 0, 0, log.token))
        check_canonical_bytes(self, log.path)
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

    def write_from_threads_and_children(self, log, threads, children, count):
        """Writers that each log `count` numbered lines: forked children first (a fork with
        threads running is deprecated), then threads of this process. Returns the writers' names."""
        pids = []
        for n in range(children):
            pid = os.fork()
            if pid == 0:  # the child must never return into the test runner
                code = 1
                try:
                    for i in range(count):
                        log.warn("child%d %d %s" % (n, i, "y" * (i % 500)))
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
        workers = [threading.Thread(target=lambda n=n: [log.info("thread%d %d %s" % (n, i, "x" * (i % 300))) for i in range(count)])
                   for n in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        for pid in pids:
            self.assertEqual(os.waitpid(pid, 0)[1], 0)
        return ["child%d" % n for n in range(children)] + ["thread%d" % n for n in range(threads)]

    def test_threads_and_forked_processes_never_interleave_lines_and_keep_records_before_exact(self):
        log = self.open(max_bytes=64 * 1024, max_files=1000)
        writers = self.write_from_threads_and_children(log, threads=6, children=3, count=2000)
        self.assertEqual(check_generations(self, self.dir, log.token), 9 * 2000)
        names = token_files(self.dir, log.token)
        self.assertEqual(names, ["dvic_log_%s.%d" % (log.token, g) for g in range(len(names) - 1)] + ["dvic_log_" + log.token])
        self.assertGreater(len(names), 10)  # the children rotated too: every process found the live file
        records = [r for name in names for r in read_lines(os.path.join(self.dir, name))[1]]
        for writer in writers:
            mine = [int(r["message"].split()[1]) for r in records if r["message"].split()[0] == writer]
            self.assertEqual(mine, list(range(2000)), writer)  # each writer's lines in its own order

    def test_forked_processes_delete_expired_generations_once(self):
        log = self.open(max_bytes=16 * 1024, max_files=2)
        self.write_from_threads_and_children(log, threads=2, children=2, count=1000)
        self.assertEqual(check_generations(self, self.dir, log.token), 4 * 1000)
        names = token_files(self.dir, log.token)
        live = file_summary(self.dir, names[-1])
        self.assertEqual(names, ["dvic_log_%s.%d" % (log.token, live["generation"] - n) for n in (2, 1)] + ["dvic_log_" + log.token])

    def test_forked_processes_share_the_counts_without_memfd_too(self):
        log = self.open(max_bytes=8 * 1024, max_files=1000)
        with unittest.mock.patch.dict(os.__dict__):
            del os.__dict__["memfd_create"]  # as in a Python built on a C library without it
            self.write_from_threads_and_children(log, threads=1, children=2, count=500)
        self.assertIsNotNone(log.shared)
        self.assertEqual(check_generations(self, self.dir, log.token), 3 * 500)

    def test_rotates_past_the_size_cap_without_losing_a_line(self):
        log = self.open(max_bytes=64 * 1024, max_files=100)
        for i in range(3000):
            log.info("line %d" % i)
        names = token_files(self.dir, log.token)
        self.assertEqual(names, ["dvic_log_%s.%d" % (log.token, g) for g in range(len(names) - 1)] + ["dvic_log_" + log.token])
        self.assertGreaterEqual(len(names), 3)
        self.assertEqual(check_generations(self, self.dir, log.token), 3000)
        headers, records = zip(*(read_lines(os.path.join(self.dir, name)) for name in names))
        self.assertEqual({h["token"] for h in headers}, {log.token})
        self.assertEqual([r["message"] for rs in records for r in rs], ["line %d" % i for i in range(3000)])

    def test_keeps_the_newest_max_files_rotated_generations(self):
        log = self.open(max_bytes=4096, max_files=3)
        written = 0
        while log.generation < 10:
            log.info("record %d" % written)
            written += 1
        self.assertEqual(token_files(self.dir, log.token), ["dvic_log_%s.%d" % (log.token, g) for g in (7, 8, 9)] + ["dvic_log_" + log.token])
        self.assertEqual(check_generations(self, self.dir, log.token), written)

    def test_rotation_vectors(self):
        for case in load_vectors()["rotation"]:
            with self.subTest(case=case["description"]):
                options = {"max_files": case["max_files"]} if "max_files" in case else {}
                log = self.open(max_bytes=case["max_bytes"], **options)
                deletes = {d["after_records"]: d["generations"] for d in case.get("agent_deletes", [])}
                for i in range(case["records"]):
                    log.info("record %d" % i)
                    for generation in deletes.get(i + 1, []):
                        os.unlink("%s.%d" % (log.path, generation))
                self.assertEqual([file_summary(self.dir, n) for n in token_files(self.dir, log.token)], expected_files(case, log.token))
                check_generations(self, self.dir, log.token)

    def test_rotated_files_deleted_by_the_agent_are_not_an_error(self):
        log = self.open(max_bytes=2048, max_files=2)
        for i in range(2000):
            log.info("record %d" % i)
            if i % 7 == 0:  # an agent shipping and deleting rotated files as they appear
                for name in token_files(self.dir, log.token)[:-1]:
                    os.unlink(os.path.join(self.dir, name))
        names = token_files(self.dir, log.token)
        self.assertLessEqual(len(names), 3)
        self.assertEqual(check_generations(self, self.dir, log.token), 2000)

    def test_max_files_from_the_option_then_the_environment_then_4(self):
        self.assertEqual(self.open().max_files, 4)
        for options, env, expected in [({}, "1", 1), ({}, "0", 0), ({}, "two", 4), ({}, "-1", 4), ({}, "", 4), ({"max_files": 2}, "1", 2)]:
            with self.subTest(options=options, env=env):
                os.environ["DVIC_LOG_MAX_FILES"] = env
                self.assertEqual(self.open(**options).max_files, expected)
        with self.assertRaises(ValueError):
            self.open(max_files=-1)

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
        self.env.pop("DVIC_LOG_MAX_FILES", None)

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
        self.assertEqual(header_problems(header), [])
        by_level = sorted((r["level"], r["message"]) for r in records)
        self.assertEqual(by_level, sorted([("INFO", "started"), ("ERROR", "oops"), ("WARN", "disk at 91%"), ("DEBUG", "x=1"), ("ERROR", "no camera")]))

    def test_max_bytes_and_max_files_options_rotate_the_log(self):
        script = "for i in 1 2 3 4 5; do echo line $i; done"
        result = subprocess.run([PYTHON, WRAPPER, "--demo", "rotating", "--max-bytes", "1", "--max-files", "1", "--quiet", "--", "sh", "-c", script],
                                env=self.env, timeout=30)
        self.assertEqual(result.returncode, 0)
        token = os.listdir(self.dir)[0][len("dvic_log_"):].split(".")[0]
        self.assertEqual([file_summary(self.dir, n) for n in token_files(self.dir, token)],
                         [{"name": "dvic_log_%s.4" % token, "generation": 4, "records_before": 4, "records": 1},
                          {"name": "dvic_log_" + token, "generation": 5, "records_before": 5, "records": 0}])
        self.assertEqual(check_generations(self, self.dir, token), 5)
        self.assertEqual(read_lines(os.path.join(self.dir, "dvic_log_%s.4" % token))[1][0]["message"], "line 5")

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



class ClosingRecordTest(unittest.TestCase):
    """The last record of a run tells the server how it ended (docs/log-format.md, "Closing record")."""

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.env = dict(os.environ, DVIC_LOG_DIR=self.dir, PYTHONPATH=PYTHON_LIB_DIR)

    def last_record(self):
        names = [n for n in os.listdir(self.dir) if n.startswith("dvic_log_")]
        self.assertEqual(len(names), 1, names)
        _, records = read_lines(os.path.join(self.dir, names[0]), closing=True)
        return records[-1]

    def demo(self, body):
        script = "import dvic_log, sys, time\nlog = dvic_log.open(demo='closing')\nlog.info('up')\n" + body
        proc = subprocess.Popen([PYTHON, "-c", script], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        self.addCleanup(proc.stdout.close)
        return proc

    def ready(self, proc):
        assert proc.stdout is not None
        self.assertEqual(proc.stdout.readline().strip(), b"ready")

    def test_a_normal_exit_writes_exited(self):
        self.assertEqual(self.demo("").wait(30), 0)
        self.assertEqual(self.last_record()["fields"], {"dvic_end": "exited"})

    def test_an_uncaught_exception_writes_exit_code_1(self):
        self.assertEqual(self.demo("raise RuntimeError('boom')").wait(30), 1)
        self.assertEqual(self.last_record()["fields"], {"dvic_end": "exited", "exit_code": 1})

    def test_sigterm_writes_killed_and_still_ends_the_process_by_the_signal(self):
        proc = self.demo("print('ready', flush=True)\ntime.sleep(30)")
        self.ready(proc)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(30), -signal.SIGTERM)
        self.assertEqual(self.last_record()["fields"], {"dvic_end": "killed"})

    def test_sigkill_writes_nothing(self):
        proc = self.demo("print('ready', flush=True)\ntime.sleep(30)")
        self.ready(proc)
        proc.kill()
        proc.wait(30)
        self.assertEqual(self.last_record()["message"], "up")

    def test_a_forked_child_exiting_does_not_end_the_parents_run(self):
        self.assertEqual(self.demo("import os\npid = os.fork()\nif pid == 0:\n    sys.exit(0)\nos.waitpid(pid, 0)\nlog.info('after child')").wait(30), 0)
        names = [n for n in os.listdir(self.dir) if n.startswith("dvic_log_")]
        _, records = read_lines(os.path.join(self.dir, names[0]), closing=True)
        self.assertEqual([r["message"] for r in records], ["up", "after child", "demo exited"])

    def test_the_wrapper_writes_the_exit_code_and_tells_a_stop_from_a_kill(self):
        for script, fields in (("exit 3", {"dvic_end": "exited", "exit_code": 3}), ("kill -9 $$", {"dvic_end": "exited", "exit_code": 137}),
                               ("kill -TERM $$", {"dvic_end": "killed", "exit_code": 143}), ("true", {"dvic_end": "exited", "exit_code": 0})):
            for name in os.listdir(self.dir):
                os.unlink(os.path.join(self.dir, name))
            subprocess.run([PYTHON, WRAPPER, "--demo", "w", "--quiet", "--", "sh", "-c", script], env=self.env, timeout=30)
            self.assertEqual(self.last_record()["fields"], fields, script)


if __name__ == "__main__":
    unittest.main()
