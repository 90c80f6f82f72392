"""Demo log tailing: parsing, batching, offsets, rotation, liveness, namespaces."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from tests.support import VECTORS, dvic_agent as agent, wait_until

TOKEN = "k3JxV9mQ2pL8sT4wZ6yB1c"


class FakeAgent(object):
    """The agent as a feature sees it: config, connection state, send()."""

    def __init__(self, state_dir, log_dir):
        self.config = agent.Config({"server_url": "ws://x/", "node_id": "n", "state_dir": state_dir, "log_dir": log_dir,
                                    "log_batch_max_records": 100, "log_batch_max_delay_ms": 0})
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self.connected.set()
        self.sent = []

    def send(self, message):
        if not self.connected.is_set():
            return False
        self.sent.append(json.loads(json.dumps(message)))
        return True

    def of_type(self, kind):
        return [m for m in self.sent if m["type"] == kind]


def own_start_time(pid):
    return agent.proc_start_time(agent.read_text("/proc/%d/stat" % pid))


def header(pid, generation=0, demo="face-tracker", token=TOKEN):
    return {"dvic_log": 1, "token": token, "generation": generation, "demo": demo, "pid": pid,
            "start_time": own_start_time(pid), "exe": "/usr/bin/python3", "argv": ["python3", "app.py"],
            "user": "demo", "uid": 1000, "hostname": "pi", "lang": "python", "lib_version": "0.1.0",
            "started_at": "2026-11-24T09:00:00.000Z"}


def record(i, level="INFO"):
    return json.dumps({"ts": "2026-11-24T10:00:00.%03dZ" % (i % 1000), "level": level, "message": "line %d" % i}) + "\n"


class ParsingTest(unittest.TestCase):
    def test_parse_vectors(self):
        with open(os.path.join(VECTORS, "logs", "format.json")) as f:
            cases = json.load(f)["parse"]
        for case in cases:
            with self.subTest(case=case["description"]):
                parsed = agent.parse_log_line(case["line"], "2026-01-01T00:00:00.000Z")
                expected = dict(case["record"])
                expected.setdefault("ts", "2026-01-01T00:00:00.000Z")
                self.assertEqual(parsed, expected)

    def test_split_lines_holds_a_partial_line_and_cuts_long_ones(self):
        lines, used = agent.split_lines(b"a\nbb\nccc", 100)
        self.assertEqual(lines, [(100, 102, b"a", False), (102, 105, b"bb", False)])
        self.assertEqual(used, 5)
        long_line = b"x" * (agent.MAX_LINE_BYTES + 10) + b"\n"
        lines, used = agent.split_lines(long_line, 0)
        self.assertEqual([(s, e, len(l), split) for s, e, l, split in lines],
                         [(0, agent.MAX_LINE_BYTES, agent.MAX_LINE_BYTES, True), (agent.MAX_LINE_BYTES, agent.MAX_LINE_BYTES + 11, 10, False)])
        self.assertEqual(used, len(long_line))

    def test_container_ids_from_cgroup_paths(self):
        cid = "dabd61853a90b206dcca28487f6f7125418bae5d28daf9695b183639bb79ba9f"
        self.assertEqual(agent.container_from_cgroup("0::/system.slice/docker-%s.scope\n" % cid), {"id": cid, "runtime": "docker"})
        self.assertEqual(agent.container_from_cgroup("9:pids:/docker/%s\n" % cid), {"id": cid, "runtime": "docker"})
        self.assertEqual(agent.container_from_cgroup("0::/machine.slice/libpod-%s.scope\n" % cid), {"id": cid, "runtime": "podman"})
        self.assertIsNone(agent.container_from_cgroup("0::/user.slice/session-2.scope\n"))


class TailerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.log_dir = os.path.join(self.dir, "tmp")
        self.state_dir = os.path.join(self.dir, "state")
        os.makedirs(self.log_dir)
        os.makedirs(self.state_dir)
        self.path = os.path.join(self.log_dir, "dvic_log_" + TOKEN)

    def make(self):
        fake = FakeAgent(self.state_dir, self.log_dir)
        tailer = agent.DemoLogs(fake)  # type: ignore[arg-type]
        return fake, tailer

    def write(self, text, path=None, mode="a"):
        with open(path or self.path, mode) as f:
            f.write(text)

    def cycle(self, tailer, times=3):
        for _ in range(times):
            tailer.scan()
            tailer.check_liveness()
            tailer.read_all()
            tailer.flush()

    def shipped(self, fake):
        return [r["message"] for m in fake.of_type("demo.logs") for r in m["data"]["records"]]

    def ack_all(self, fake, tailer):
        for m in fake.of_type("demo.logs"):
            tailer.on_ack({"type": "logs.ack", "id": m["id"], "data": {"stored": len(m["data"]["records"]), "duplicates": 0}})

    def test_ships_records_in_order_with_byte_offsets_and_holds_a_partial_line(self):
        self.write(json.dumps(header(os.getpid())) + "\n" + record(0) + record(1) + '{"ts":"2026', mode="w")
        fake, tailer = self.make()
        self.cycle(tailer)
        batch = fake.of_type("demo.logs")[0]["data"]
        self.assertEqual([r["message"] for r in batch["records"]], ["line 0", "line 1"])
        header_len = len(json.dumps(header(os.getpid()))) + 1
        self.assertEqual(batch["start_offset"], header_len)
        self.assertEqual(batch["records"][1]["offset"], header_len + len(record(0)))
        self.assertEqual(batch["end_offset"], header_len + len(record(0)) + len(record(1)))
        self.assertEqual((batch["token"], batch["demo"], batch["file_generation"]), (TOKEN, "face-tracker", 0))
        self.write('-11-24T10:00:00.002Z","level":"WARN","message":"line 2"}\n')
        self.cycle(tailer)
        self.assertEqual(self.shipped(fake), ["line 0", "line 1", "line 2"])
        self.assertIsNone(agent.validate_message(fake.of_type("demo.logs")[1], "agent-to-server"))

    def test_resumes_after_a_restart_from_the_acknowledged_offset(self):
        self.write(json.dumps(header(os.getpid())) + "\n" + "".join(record(i) for i in range(5)), mode="w")
        fake, tailer = self.make()
        self.cycle(tailer)
        self.ack_all(fake, tailer)
        tailer.save_offsets(force=True)
        tailer.stop()
        self.write("".join(record(i) for i in range(5, 8)))
        fake2, tailer2 = self.make()
        self.cycle(tailer2)
        self.assertEqual(self.shipped(fake2), ["line 5", "line 6", "line 7"])

    def test_sends_again_what_was_in_flight_when_the_connection_dropped(self):
        self.write(json.dumps(header(os.getpid())) + "\n" + "".join(record(i) for i in range(3)), mode="w")
        fake, tailer = self.make()
        self.cycle(tailer)
        fake.connected.clear()
        tailer.on_disconnected()
        self.write(record(3))
        self.cycle(tailer)
        fake.connected.set()
        fake.sent = []
        tailer.on_connected()
        self.cycle(tailer)
        self.assertEqual(self.shipped(fake), ["line 0", "line 1", "line 2", "line 3"])

    def test_waits_for_acks_when_too_many_batches_are_in_flight(self):
        self.write(json.dumps(header(os.getpid())) + "\n" + "".join(record(i) for i in range(1000)), mode="w")
        fake, tailer = self.make()
        self.cycle(tailer, times=20)
        self.assertEqual(len(fake.of_type("demo.logs")), agent.MAX_IN_FLIGHT)
        self.ack_all(fake, tailer)
        self.cycle(tailer, times=20)
        self.assertEqual(len(self.shipped(fake)), 2 * agent.MAX_IN_FLIGHT * 100)

    def test_follows_rotation_without_losing_a_line(self):
        self.write(json.dumps(header(os.getpid())) + "\n" + record(0) + record(1), mode="w")
        fake, tailer = self.make()
        self.cycle(tailer)
        self.write(record(2))
        os.rename(self.path, self.path + ".1")
        self.write(json.dumps(header(os.getpid(), generation=1)) + "\n" + record(3), mode="w")
        self.cycle(tailer)
        self.assertEqual(self.shipped(fake), ["line 0", "line 1", "line 2", "line 3"])
        self.assertEqual([m["data"]["file_generation"] for m in fake.of_type("demo.logs")], [0, 0, 1])

    def test_ships_the_rest_of_a_rotated_file_before_the_new_one(self):
        # More than fits in flight: the old generation is still being shipped when the new one appears.
        self.write(json.dumps(header(os.getpid())) + "\n" + "".join(record(i) for i in range(1000)), mode="w")
        fake, tailer = self.make()
        self.cycle(tailer)
        os.rename(self.path, self.path + ".1")
        self.write(json.dumps(header(os.getpid(), generation=1)) + "\n" + "".join(record(i) for i in range(1000, 1010)), mode="w")
        for _ in range(20):
            self.cycle(tailer)
            self.ack_all(fake, tailer)
        self.assertEqual(self.shipped(fake), ["line %d" % i for i in range(1010)])

    def test_a_partial_last_line_of_a_rotated_file_does_not_hold_up_the_new_one(self):
        self.write(json.dumps(header(os.getpid())) + "\n" + record(0) + '{"ts":"2026', mode="w")
        fake, tailer = self.make()
        self.cycle(tailer)
        os.rename(self.path, self.path + ".1")
        self.write(json.dumps(header(os.getpid(), generation=1)) + "\n" + record(1), mode="w")
        self.cycle(tailer)
        self.assertEqual(self.shipped(fake), ["line 0", "line 1"])

    def test_finishes_a_file_deleted_while_being_read(self):
        self.write(json.dumps(header(os.getpid())) + "\n" + record(0), mode="w")
        fake, tailer = self.make()
        self.cycle(tailer)
        with open(self.path, "a") as f:
            os.unlink(self.path)
            f.write(record(1))
            f.flush()
            self.cycle(tailer)
        self.assertEqual(self.shipped(fake), ["line 0", "line 1"])

    def test_replaces_invalid_utf8_and_keeps_print_output_as_raw_records(self):
        self.write(json.dumps(header(os.getpid())) + "\n", mode="w")
        with open(self.path, "ab") as f:
            f.write(b"caf\xe9 au lait\n")
        fake, tailer = self.make()
        self.cycle(tailer)
        rec = fake.of_type("demo.logs")[0]["data"]["records"][0]
        self.assertEqual((rec["message"], rec["level"], rec["fields"]), ("caf\ufffd au lait", "INFO", {"raw": True}))

    def test_reports_a_demo_alive_then_dead_with_its_exit_time(self):
        child = subprocess.Popen(["sleep", "30"])
        self.addCleanup(child.kill)
        self.write(json.dumps(header(child.pid)) + "\n", mode="w")
        fake, tailer = self.make()
        self.cycle(tailer)
        first = fake.of_type("demo.state")[0]["data"]["demos"][0]
        self.assertEqual((first["pid"], first["alive"], first["demo"], first["user"]), (child.pid, True, "face-tracker", "demo"))
        child.kill()
        child.wait()
        self.cycle(tailer)
        died = fake.of_type("demo.state")[-1]["data"]
        self.assertEqual((died["full"], died["demos"][0]["alive"]), (False, False))
        self.assertIn("exited_at", died["demos"][0])

    def test_a_reused_pid_is_not_taken_for_the_demo(self):
        fake_header = header(os.getpid())
        fake_header["start_time"] -= 1  # same pid, another process start
        self.write(json.dumps(fake_header) + "\n", mode="w")
        fake, tailer = self.make()
        self.cycle(tailer)
        self.assertFalse(fake.of_type("demo.state")[0]["data"]["demos"][0]["alive"])


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"), "needs root and unshare")
class NamespaceTest(unittest.TestCase):
    """A demo in bare namespaces (unshare) with its own /tmp and /proc."""

    def test_discovers_a_demo_in_its_own_mount_and_pid_namespace_and_sees_it_die(self):
        state_dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, state_dir)
        script = ("mount -t tmpfs tmpfs /tmp && "
                  "st=$(cut -d' ' -f22 /proc/$$/stat) && "
                  "printf '{\"dvic_log\":1,\"token\":\"%s\",\"generation\":0,\"demo\":\"ns-demo\",\"pid\":%%s,\"start_time\":%%s}\\n' $$ $st > /tmp/dvic_log_%s && "
                  "printf '{\"ts\":\"2026-11-24T10:00:00.000Z\",\"level\":\"WARN\",\"message\":\"inside\"}\\n' >> /tmp/dvic_log_%s && "
                  "exec sleep 30") % (TOKEN, TOKEN, TOKEN)
        child = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script])
        self.addCleanup(lambda: (child.poll() is None) and os.kill(child.pid, signal.SIGKILL))
        self.assertFalse(os.path.exists("/tmp/dvic_log_" + TOKEN))
        fake = FakeAgent(state_dir, "/tmp")
        tailer = agent.DemoLogs(fake)  # type: ignore[arg-type]

        def shipped():
            tailer.scan()
            tailer.check_liveness()
            tailer.read_all()
            tailer.flush()
            return fake.of_type("demo.logs")
        batch = wait_until(shipped, 10, "the namespaced demo's log")[0]["data"]
        self.assertEqual((batch["demo"], batch["records"][0]["message"]), ("ns-demo", "inside"))
        demo = fake.of_type("demo.state")[0]["data"]["demos"][0]
        self.assertEqual((demo["alive"], demo["pid"], demo["container"]["runtime"]), (True, 1, "namespace"))
        child.kill()
        child.wait()

        def died():
            tailer.scan()
            tailer.check_liveness()
            return [d for m in fake.of_type("demo.state") for d in m["data"]["demos"] if not d["alive"]]
        self.assertEqual(wait_until(died, 10, "death")[0]["token"], TOKEN)


if __name__ == "__main__":
    unittest.main()
