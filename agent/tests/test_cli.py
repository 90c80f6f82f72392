"""The agent's command line: config errors are one clear line and exit code 2."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from tests.support import AGENT_DIR, AGENT_PATH, PYTHON, dvic_agent as agent, fixture, run_agent

NODE_ID = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"
PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINBJoReopVfDqUlNI2avEajmfTO3MWIs2RTPUDSk9oLh\n-----END PRIVATE KEY-----\n"


class ConfigErrorsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def write(self, content, name="agent.json", mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        os.chmod(path, mode)
        return path

    def assert_refused(self, path, fragment):
        result = run_agent("--config", path)
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn(path, lines[0])
        self.assertIn(fragment, lines[0])

    def test_missing_file(self):
        self.assert_refused(os.path.join(self.dir, "nope.json"), "no such file")

    def test_broken_json(self):
        self.assert_refused(self.write('{"server_url": '), "not valid JSON")

    def test_missing_or_bad_fields(self):
        good = {"server_url": "ws://127.0.0.1:1/api/v1/agent", "node_id": NODE_ID, "private_key": PEM}
        cases = [
            (dict(good, node_id=None), 'missing "node_id"'),
            ({k: v for k, v in good.items() if k != "server_url"}, 'missing "server_url"'),
            (dict(good, server_url="http://x/api"), "ws:// or wss://"),
            (dict(good, node_id="node-1; rm -rf /"), "not a UUID"),
            ({k: v for k, v in good.items() if k != "private_key"}, 'missing "key_path"'),
            (dict(good, private_key="", key_path="/nonexistent/key"), "cannot read key"),
            (dict(good, private_key="not a key"), "not a PEM private key"),
            (dict(good, metrics_interval_s=0), "metrics_interval_s"),
            (dict(good, untrusted_log_files="hide"), '"untrusted_log_files" must be "show" or "ignore"'),
            (dict(good, tls_cert_sha256="abc"), '"tls_cert_sha256" must be 64 hex digits'),
            (dict(good, max_open_log_files=1), '"max_open_log_files" must be at least 4'),
            (dict(good, system_logs="kernel"), '"system_logs" must be'),
            ([1, 2], "JSON object"),
        ]
        for config, fragment in cases:
            with self.subTest(fragment=fragment):
                self.assert_refused(self.write(config), fragment)

    def test_warns_when_the_config_is_readable_by_others(self):
        path = self.write({"server_url": "ws://x/", "node_id": NODE_ID, "private_key": PEM}, mode=0o644)
        with _captured_stderr() as err:
            agent.load_config(path)
        self.assertIn("readable by other users", err.getvalue())

    def test_usage_errors_exit_2_and_version_exits_0(self):
        self.assertEqual(run_agent().returncode, 2)
        self.assertEqual(run_agent("--bogus").returncode, 2)
        result = run_agent("--version")
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "dvic-agent %s (protocol 1)" % agent.AGENT_VERSION))


class RunTest(unittest.TestCase):
    def config(self):
        """A config whose server nobody listens on: the agent keeps trying."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()
        config = os.path.join(root, "agent.json")
        with open(config, "w") as f:
            json.dump({"server_url": "ws://127.0.0.1:%d/api/v1/agent" % port, "node_id": NODE_ID, "private_key": PEM,
                       "state_dir": os.path.join(root, "state"), "log_dir": root, "system_logs": "off", "container_logs": False}, f)
        os.chmod(config, 0o600)
        return config

    def start(self, config):
        process = subprocess.Popen([PYTHON, AGENT_PATH, "--config", config], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        self.addCleanup(_kill, process)
        assert process.stderr is not None
        self.assertIn("starting", process.stderr.readline())
        return process

    def assert_stops(self, process):
        try:
            _, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.fail("the agent did not stop within 20 s of the signal")
        self.assertEqual(process.returncode, 0, err)
        self.assertIn("stopped", err)

    def test_stops_on_sigterm_or_sigint_with_code_0(self):
        # The agent runs in a thread of its own (so that its parse tree is freed): the signal
        # still reaches it through the main thread.
        config = self.config()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                process = self.start(config)
                process.send_signal(sig)
                self.assert_stops(process)

    def test_stops_when_the_signal_misses_the_main_threads_wait(self):
        # Python runs a signal's handler in the main thread only, which by now waits in the
        # interpreter's shutdown for the connection thread. A signal whose C handler ran just
        # before that wait blocked (or in another thread, as here) does not wake it: the agent
        # ran on and the other test timed out once on a loaded machine.
        import ctypes
        tgkill = ctypes.CDLL(None, use_errno=True).tgkill
        config = self.config()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                process = self.start(config)
                pid = process.pid
                _wait_asleep(pid, pid)  # the main thread: now in the interpreter's shutdown
                others = sorted((int(tid) for tid in os.listdir("/proc/%d/task" % pid) if int(tid) != pid), reverse=True)
                self.assertTrue(any(tgkill(pid, tid, sig) == 0 for tid in others), "no thread but the main one took the signal")
                self.assert_stops(process)


def _kill(process):
    if process.poll() is None:
        process.kill()
        process.communicate()


def _wait_asleep(pid, tid, timeout=10.0):
    """Until the thread has been asleep (state S) for 0.2 s on end."""
    deadline = time.monotonic() + timeout
    asleep = 0
    while asleep < 10:
        if time.monotonic() > deadline:
            raise AssertionError("thread %d of %d did not go to sleep" % (tid, pid))
        with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
            asleep = asleep + 1 if f.read().rsplit(")", 1)[1].split()[0] == "S" else 0
        time.sleep(0.02)


class PrintStateTest(unittest.TestCase):
    def test_prints_one_valid_hardware_state_from_a_fixture_tree(self):
        proc, sys_root, etc = fixture("raspberry-pi")
        result = run_agent("--print-state", "--proc-root", proc, "--sys-root", sys_root, "--etc-root", etc)
        self.assertEqual(result.returncode, 0, result.stderr)
        state = json.loads(result.stdout)
        self.assertEqual(state["temperatures"][0]["chip"], "cpu-thermal")
        self.assertIsNone(agent.validate_message({"type": "hardware.state", "data": state}))


class SystemdUnitTest(unittest.TestCase):
    def test_unit_passes_systemd_analyze_verify_without_warnings(self):
        if not shutil.which("systemd-analyze"):
            if os.environ.get("CI") == "true":
                self.fail("systemd-analyze is not installed (apt-get install systemd)")
            self.skipTest("systemd-analyze is not installed (apt-get install systemd)")
        with tempfile.TemporaryDirectory() as tmp:
            # Point the unit at a copy of the agent where verify can see it.
            os.makedirs(os.path.join(tmp, "opt/dvic-agent"))
            for name in ("dvic_agent.py", "guard.py"):
                shutil.copy(os.path.join(AGENT_DIR, "dvic_agent.py"), os.path.join(tmp, "opt/dvic-agent", name))
            with open(os.path.join(AGENT_DIR, "dvic-agent.service")) as f:
                unit = f.read().replace("/opt/dvic", tmp + "/opt/dvic").replace("/etc/dvic", tmp)
            path = os.path.join(tmp, "dvic-agent.service")
            with open(path, "w") as f:
                f.write(unit)
            result = subprocess.run(["systemd-analyze", "verify", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual([l for l in result.stderr.splitlines() if "dvic-agent.service" in l], [])
            self.assertIn("ExecStart=/usr/bin/python3 " + tmp + "/opt/dvic-agent/dvic_agent.py --config", unit)
            self.assertIn("ExecStartPre=-/usr/bin/python3 %s/opt/dvic-agent/guard.py --guard %s/opt/dvic-agent %%n" % (tmp, tmp), unit)


class _captured_stderr(object):
    def __enter__(self):
        import io
        import sys
        self.saved, sys.stderr = sys.stderr, io.StringIO()
        return sys.stderr

    def __exit__(self, *exc):
        import sys
        sys.stderr = self.saved


if __name__ == "__main__":
    unittest.main()
