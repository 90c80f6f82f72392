"""Demo log tailing: parsing, batching by size, offsets, rotation, liveness, trust, namespaces.

Every test runs the real DemoLogs feature of a real Agent (its connection replaced by a list
that checks each frame as the server would) on files in a directory of its own."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from tests.support import PYTHON, TOKEN, VECTORS, dvic_agent as agent, make_agent, temp_dir, wait_until

OTHER_TOKEN = "Zq8wLm3nB5vC7xK9pR2tY4"
CONTROL = bytes(c for c in range(32) if c != 10)  # every control character but the newline


def own_start_time(pid):
    return agent.proc_start_time(agent.read_text("/proc/%d/stat" % pid))


def header(pid, generation=0, demo="face-tracker", token=TOKEN, **extra):
    values = {"dvic_log": 1, "token": token, "generation": generation, "demo": demo, "pid": pid,
              "start_time": own_start_time(pid), "exe": "/usr/bin/python3", "argv": ["python3", "app.py"],
              "user": "demo", "uid": 1000, "hostname": "pi", "lang": "python", "lib_version": "0.1.0",
              "started_at": "2026-11-24T09:00:00.000Z"}
    values.update(extra)
    return values


def record(i, level="INFO", text="line %d"):
    message = text % i if "%d" in text else text
    return json.dumps({"ts": "2026-11-24T10:00:00.%03dZ" % (i % 1000), "level": level, "message": message}) + "\n"


def header_line(pid=None, **kw):
    return json.dumps(header(os.getpid() if pid is None else pid, **kw)) + "\n"


# What a library writes as its demo exits cleanly (docs/log-format.md).
CLOSING_RECORD = json.dumps({"ts": "2026-01-01T00:00:01Z", "level": "INFO", "message": "demo exited", "fields": {"dvic_end": "exited", "exit_code": 0}}) + "\n"


def demo_process(test):
    """A process standing for a demo, killed after the test."""
    child = subprocess.Popen(["sleep", "30"])
    test.addCleanup(child.kill)
    return child


def full_tables(h):
    """Each full demo table the agent sent: (token, alive) of every demo in it."""
    return [[(d["token"], d["alive"]) for d in m["data"]["demos"]] for m in h.agent.of_type("demo.state") if m["data"]["full"]]


def shorten_death_wait(test, seconds=0.2):
    test.addCleanup(setattr, agent, "DEATH_REPORT_WAIT_S", agent.DEATH_REPORT_WAIT_S)
    agent.DEATH_REPORT_WAIT_S = seconds


class Harness(object):
    """A real agent's DemoLogs on a private log directory, driven one step at a time."""

    def __init__(self, test, **config):
        self.test = test
        self.agent = make_agent(test, **config)
        self.log_dir = self.agent.config.log_dir
        self.tailer = self.agent.feature(agent.DemoLogs)
        self.tailer.rotated_grace_s = 0
        test.addCleanup(self.tailer.stop)

    def restart(self):
        """The agent stopped and started again: same state and log directories."""
        self.tailer.stop()
        return Harness(self.test, state_dir=self.agent.config.state_dir, log_dir=self.log_dir)

    def current(self, token=TOKEN):
        """The generation of a demo log being read now."""
        f = self.tailer.groups["host/" + token].current()
        assert f is not None
        return f

    def path(self, token=TOKEN, suffix=""):
        return os.path.join(self.log_dir, "dvic_log_" + token + suffix)

    def write(self, text, token=TOKEN, suffix="", mode="a"):
        with open(self.path(token, suffix), mode + ("b" if isinstance(text, bytes) else "")) as f:
            f.write(text)

    def cycle(self, times=3):
        for _ in range(times):
            self.tailer.step()

    def batches(self):
        return self.agent.of_type("demo.logs")

    def shipped(self, token=None):
        return [r["message"] for m in self.batches() if token in (None, m["data"]["token"]) for r in m["data"]["records"]]

    def ack_all(self):
        for m in self.batches():
            if m["id"] in self.agent.log_answers:
                self.agent.answer(m)

    def run_acking(self, rounds=30):
        """Steps, the server acknowledging every batch, until nothing new goes out."""
        for _ in range(rounds):
            before = len(self.agent.frames)
            self.cycle(1)
            self.ack_all()
            self.cycle(1)
            if len(self.agent.frames) == before and not self.tailer.busy:
                return

    def demos(self):
        return [d for m in self.agent.of_type("demo.state") for d in m["data"]["demos"]]

    def problems(self, code=None):
        return [p for p in self.agent.problems.snapshot() if code in (None, p["code"])]


class ParsingTest(unittest.TestCase):
    def vectors(self, name):
        with open(os.path.join(VECTORS, "logs", name)) as f:
            return json.load(f)

    def test_parse_vectors(self):
        for case in self.vectors("format.json")["parse"]:
            with self.subTest(case=case["description"]):
                parsed = agent.parse_log_line(case["line"], "2026-01-01T00:00:00.000Z")
                expected = dict(case["record"])
                expected.setdefault("ts", "2026-01-01T00:00:00.000Z")
                self.assertEqual(parsed, expected)

    def test_a_record_goes_out_as_the_parsed_record_with_its_offset(self):
        cases = self.vectors("format.json")
        lines = [c["line"] for c in cases["parse"]] + [c["line"] for c in cases["records"]]
        for line in lines:
            with self.subTest(line=line[:60]):
                encoded = agent.encode_log_line(line.encode(), 77, False, False, "2026-01-01T00:00:00.000Z")
                expected = dict(agent.parse_log_line(line, "2026-01-01T00:00:00.000Z"), offset=77)
                self.assertEqual(json.loads(encoded), expected)

    def test_refuses_headers_other_parsers_would_not_read(self):
        for line in (b'{"dvic_log":1,"pid":5,"generation":NaN}', b'{"dvic_log":1,"pid":5,"uid":Infinity}',
                     b'{"dvic_log":1,"pid":5,"start_time":1e400}', b'{"dvic_log":1,"pid":5,"demo":"caf\xe9"}',
                     b'[' * 100000, b'{"dvic_log":1,"pid":5,"token":"k3JxV9mQ2pL8sT4wZ6yB1c\\n"}', b""):
            with self.subTest(line=line[:50]):
                parsed, why = agent.parse_log_header(line)
                self.assertIsNone(parsed)
                self.assertTrue(why)

    def test_lines_other_parsers_would_refuse_are_kept_raw_and_encode_to_valid_json(self):
        for line in ('{"level":"INFO","message":NaN}', '{"level":"INFO","message":"x","fields":{"v":1e999}}',
                     '{"level":"INFO","message":"' + "[" * 50000 + '"}', "[" * 50000,
                     '{"level":"INFO","message":"\\ud800 lone"}', '{"level":"INFO","ts":"' + "9" * 100 + '","message":"m"}',
                     '{"level":"INFO","message":"m","offset":3,"lost_lines":99}'):
            with self.subTest(line=line[:50]):
                encoded = agent.encode_log_line(line.encode(), 5, False, False, "2026-01-01T00:00:00.000Z")
                decoded = json.loads(encoded, parse_constant=lambda c: self.fail("bare %s" % c))
                self.assertIsNone(agent.validate_message({"type": "demo.logs", "id": "x", "data": {
                    "token": TOKEN, "demo": "d", "start_offset": 5, "end_offset": 6, "records": [decoded]}}))
                self.assertNotIn("lost_lines", decoded)  # a demo cannot forge a loss marker

    def test_split_lines_holds_a_partial_line_and_cuts_long_ones(self):
        lines, used = agent.split_lines(b"a\nbb\nccc", 100)
        self.assertEqual(lines, [(100, 102, b"a", False, True), (102, 105, b"bb", False, True)])
        self.assertEqual(used, 5)
        long_line = b"x" * (agent.MAX_LINE_BYTES + 10) + b"\n"
        lines, used = agent.split_lines(long_line, 0)
        self.assertEqual([(s, e, len(l), piece, ends) for s, e, l, piece, ends in lines],
                         [(0, agent.MAX_LINE_BYTES, agent.MAX_LINE_BYTES, True, False), (agent.MAX_LINE_BYTES, agent.MAX_LINE_BYTES + 11, 10, True, True)])
        self.assertEqual(used, len(long_line))

    def test_long_lines_are_cut_between_characters(self):
        text = ("é" * agent.MAX_LINE_BYTES).encode() + b"\n"
        lines, _ = agent.split_lines(text, 0)
        self.assertTrue(len(lines) > 1)
        self.assertEqual("".join(l.decode("utf-8") for _, _, l, _, _ in lines), "é" * agent.MAX_LINE_BYTES)

    def test_no_record_is_larger_than_the_budget_and_the_pieces_join_up(self):
        raw = bytes(range(32)) * 2048  # 64 KiB of control characters: 6 bytes each once escaped
        pieces = agent.encode_within(raw, 1000, 1000 + len(raw) + 1, False, False, "2026-01-01T00:00:00.000Z", 60000)
        self.assertTrue(len(pieces) > 1)
        self.assertTrue(all(len(p[2]) <= 60000 for p in pieces))
        records = [json.loads(p[2]) for p in pieces]
        self.assertEqual("".join(r["message"] for r in records), raw.decode())
        self.assertEqual([r.get("split", False) for r in records], [True] * (len(records) - 1) + [False])
        self.assertEqual([r["offset"] for r in records], [p[0] for p in pieces])
        self.assertEqual(pieces[-1][1], 1000 + len(raw) + 1)

    def test_container_ids_from_cgroup_paths(self):
        cid = "dabd61853a90b206dcca28487f6f7125418bae5d28daf9695b183639bb79ba9f"
        self.assertEqual(agent.container_from_cgroup("0::/system.slice/docker-%s.scope\n" % cid), {"id": cid, "runtime": "docker"})
        self.assertEqual(agent.container_from_cgroup("9:pids:/docker/%s\n" % cid), {"id": cid, "runtime": "docker"})
        self.assertEqual(agent.container_from_cgroup("0::/machine.slice/libpod-%s.scope\n" % cid), {"id": cid, "runtime": "podman"})
        self.assertIsNone(agent.container_from_cgroup("0::/user.slice/session-2.scope\n"))

    def test_log_names(self):
        self.assertEqual(agent.parse_log_name("dvic_log_" + TOKEN), (TOKEN, None))
        self.assertEqual(agent.parse_log_name("dvic_log_" + TOKEN + ".12"), (TOKEN, 12))
        for name in ("dvic_log_" + TOKEN + "\n", "dvic_log_" + TOKEN + ".01", "dvic_log_" + TOKEN + ".x", "dvic_log_short", "x" + "dvic_log_" + TOKEN):
            self.assertIsNone(agent.parse_log_name(name), name)

    def test_trust_compares_the_owner_with_the_header_and_the_process(self):
        claim = {"pid": 42, "uid": 1000}
        users = {"demo": 1000, "root": 0}
        self.assertEqual(agent.judge_trust(0, claim, [1001] * 4, users), "")
        self.assertEqual(agent.judge_trust(1000, claim, [1000] * 4, users), "")
        self.assertEqual(agent.judge_trust(1000, claim, None, users), "")
        self.assertIn("claims uid 1000", agent.judge_trust(1001, claim, [1001] * 4, users))
        self.assertIn("process 42 runs as uid 0", agent.judge_trust(1000, claim, [0, 0, 0, 0], users))

    def test_trust_compares_the_owner_with_the_user_the_header_names(self):
        users = agent.parse_passwd_uids("root:x:0:0:root:/root:/bin/bash\ndemo:x:1000:1000::/home/demo:/bin/sh\nbroken line\n")
        self.assertEqual(users, {"root": 0, "demo": 1000})
        self.assertEqual(agent.judge_trust(1000, {"pid": 42, "user": "demo"}, None, users), "")
        # Written by "nobody", claiming to be root's demo, with no uid to compare.
        self.assertIn("claims user root (uid 0)", agent.judge_trust(65534, {"pid": 42, "user": "root"}, None, users))
        self.assertIn("user ghost, unknown here", agent.judge_trust(1000, {"pid": 42, "user": "ghost"}, None, users))
        # With a uid, the uid decides (a name from a stale environment does not make it untrusted)...
        self.assertEqual(agent.judge_trust(1000, {"pid": 42, "uid": 1000, "user": "root"}, None, users), "")
        self.assertEqual(agent.owner_name(1000, users), "demo")

        self.assertEqual(agent.parse_status_uids("Name:\tx\nUid:\t1000\t1001\t1002\t1003\nGid:\t1\t1\t1\t1\n"), [1000, 1001, 1002, 1003])

    def test_a_demo_table_too_big_for_one_frame_goes_in_parts(self):
        demos = [{"token": "%022d" % i, "demo": "d%d" % i, "pid": i + 1, "alive": True, "argv": ["x" * 4000] * 8, "trusted": True}
                 for i in range(200)]
        frames = agent.demo_state_messages(demos, True, 65536)
        messages = [json.loads(f) for f in frames]
        self.assertTrue(all(len(f) <= 65536 for f in frames))
        self.assertTrue(messages[0]["data"]["full"])
        self.assertEqual([d["token"] for d in messages[0]["data"]["demos"]], [d["token"] for d in demos][:len(messages[0]["data"]["demos"])])
        complete = [d for m in messages[1:] for d in m["data"]["demos"]]
        self.assertEqual([d["token"] for d in complete], [d["token"] for d in demos])
        for m in messages:
            self.assertIsNone(agent.validate_message(m, "agent-to-server"))


class TailerTest(unittest.TestCase):
    def test_ships_records_in_order_with_byte_offsets_and_holds_a_partial_line(self):
        h = Harness(self)
        h.write(header_line() + record(0) + record(1) + '{"ts":"2026', mode="w")
        h.cycle()
        batch = h.batches()[0]["data"]
        self.assertEqual([r["message"] for r in batch["records"]], ["line 0", "line 1"])
        header_len = len(header_line())
        self.assertEqual(batch["start_offset"], header_len)
        self.assertEqual(batch["records"][1]["offset"], header_len + len(record(0)))
        self.assertEqual(batch["end_offset"], header_len + len(record(0)) + len(record(1)))
        self.assertEqual((batch["token"], batch["demo"], batch["file_generation"]), (TOKEN, "face-tracker", 0))
        h.write('-11-24T10:00:00.002Z","level":"WARN","message":"line 2"}\n')
        h.ack_all()
        h.cycle()
        self.assertEqual(h.shipped(), ["line 0", "line 1", "line 2"])

    def test_resumes_after_a_restart_from_the_acknowledged_offset(self):
        h = Harness(self)
        h.write(header_line() + "".join(record(i) for i in range(5)), mode="w")
        h.cycle()
        h.ack_all()
        h.cycle()
        h.write("".join(record(i) for i in range(5, 8)))
        again = h.restart()
        again.cycle()
        self.assertEqual(again.shipped(), ["line 5", "line 6", "line 7"])

    def test_sends_again_what_was_in_flight_when_the_connection_dropped(self):
        h = Harness(self)
        h.write(header_line() + "".join(record(i) for i in range(3)), mode="w")
        h.cycle()
        h.agent.connected.clear()
        h.tailer.on_disconnected()
        h.write(record(3))
        h.cycle()
        h.agent.connected.set()
        h.agent.frames = []
        h.tailer.on_connected()
        h.cycle()
        self.assertEqual(h.shipped(), ["line 0", "line 1", "line 2", "line 3"])

    def test_waits_for_acks_when_too_many_batches_are_in_flight(self):
        h = Harness(self)
        h.write(header_line() + "".join(record(i) for i in range(1000)), mode="w")
        h.cycle(20)
        self.assertEqual(len(h.batches()), agent.MAX_IN_FLIGHT)
        h.ack_all()
        h.cycle(20)
        self.assertEqual(len(h.shipped()), 2 * agent.MAX_IN_FLIGHT * 100)

    def test_acknowledges_only_the_contiguous_prefix_and_resends_after_a_nack(self):
        h = Harness(self)
        h.write(header_line() + "".join(record(i) for i in range(300)), mode="w")
        h.cycle()
        first, second, third = h.batches()[:3]
        h.agent.answer(third)
        h.cycle(1)
        f = h.current()
        self.assertEqual(f.stream.acked[0], first["data"]["start_offset"])  # an ack never covers an earlier batch
        h.agent.answer(first)
        h.agent.answer(second, "logs.nack", code="storage_failed", message="disk error", retry_after_ms=0)
        h.cycle(1)
        self.assertEqual(f.stream.acked[0], first["data"]["end_offset"])
        self.assertEqual(f.stream.pending[0][0][0], second["data"]["start_offset"])  # read again from there, not sent yet
        wait_until(lambda: (h.cycle(1), [m for m in h.batches()[3:] if m["data"]["start_offset"] == second["data"]["start_offset"]])[1],
                   10, "the refused batch sent again")
        h.run_acking()
        messages = h.shipped()
        self.assertEqual(sorted(set(messages), key=lambda m: int(m.split()[1])), ["line %d" % i for i in range(300)])

    def test_sends_again_a_batch_nobody_answered(self):
        h = Harness(self)
        h.write(header_line() + record(0), mode="w")
        h.cycle()
        stream = h.current().stream
        stream.in_flight[0][3] -= h.agent.config.log_answer_timeout_s + 1  # sent long ago
        h.cycle()
        self.assertEqual(h.shipped(), ["line 0", "line 0"])
        self.assertEqual(len(h.agent.log_answers), 1)  # the first id is forgotten

    def test_a_batch_the_server_refuses_outright_is_skipped_and_reported(self):
        h = Harness(self)
        h.write(header_line() + record(0), mode="w")
        h.cycle()
        h.agent.answer(h.batches()[0], "error", code="invalid_message", message="demo.logs: /data/records/0 bad")
        h.write(record(1))
        h.cycle()
        self.assertEqual(h.shipped(), ["line 0", "line 1"])
        self.assertEqual(h.problems("logs.batch_refused")[0]["count"], 1)

    def test_follows_rotation_without_losing_a_line(self):
        h = Harness(self)
        h.write(header_line() + record(0) + record(1), mode="w")
        h.cycle()
        h.write(record(2))
        os.rename(h.path(), h.path(suffix=".0"))
        h.write(header_line(generation=1, records_before=3) + record(3), mode="w")
        h.run_acking()
        self.assertEqual(h.shipped(), ["line 0", "line 1", "line 2", "line 3"])
        self.assertEqual([m["data"]["file_generation"] for m in h.batches()], [0, 0, 1])

    def test_ships_the_rest_of_a_rotated_file_before_the_new_one(self):
        h = Harness(self)
        h.write(header_line() + "".join(record(i) for i in range(1000)), mode="w")
        h.cycle()
        os.rename(h.path(), h.path(suffix=".0"))
        h.write(header_line(generation=1, records_before=1000) + "".join(record(i) for i in range(1000, 1010)), mode="w")
        h.run_acking()
        self.assertEqual(h.shipped(), ["line %d" % i for i in range(1010)])

    def test_the_unfinished_last_line_of_a_rotated_file_is_shipped_as_is(self):
        h = Harness(self)
        h.write(header_line() + record(0) + '{"ts":"2026', mode="w")
        h.cycle()
        os.rename(h.path(), h.path(suffix=".0"))
        h.write(header_line(generation=1, records_before=1) + record(1), mode="w")
        h.run_acking()
        self.assertEqual(h.shipped(), ["line 0", '{"ts":"2026', "line 1"])

    def test_deletes_a_rotated_generation_once_every_line_is_acknowledged(self):
        h = Harness(self)
        h.write(header_line() + record(0), mode="w")
        h.cycle()
        os.rename(h.path(), h.path(suffix=".0"))
        h.write(header_line(generation=1, records_before=1) + record(1), mode="w")
        h.cycle()
        self.assertTrue(os.path.exists(h.path(suffix=".0")), "deleted before its lines were acknowledged")
        h.run_acking()
        self.assertFalse(os.path.exists(h.path(suffix=".0")))
        self.assertTrue(os.path.exists(h.path()))
        self.assertEqual(h.shipped(), ["line 0", "line 1"])

    def test_deletes_only_the_regular_file_it_read(self):
        h = Harness(self)
        target = os.path.join(h.log_dir, "precious")
        with open(target, "w") as f:
            f.write("keep me\n")
        st = os.stat(target)
        link = h.path(suffix=".0")
        os.symlink(target, link)
        h.tailer._delete(link, st.st_dev, st.st_ino)  # a symlink put where the finished file was
        self.assertTrue(os.path.lexists(link) and os.path.exists(target))
        other = h.path(suffix=".1")
        h.write("x\n", suffix=".1")
        h.tailer._delete(other, st.st_dev, st.st_ino)  # another file under the name
        self.assertTrue(os.path.exists(other))

    def test_reports_generations_deleted_before_they_were_read_once_with_the_exact_count(self):
        h = Harness(self)
        h.write(header_line() + "".join(record(i) for i in range(4)), mode="w")
        h.run_acking()
        h.tailer.stop()  # while the agent is down the demo writes on and rotates twice; the library keeps too few files.
        h.write("".join(record(i) for i in range(4, 10)))
        os.rename(h.path(), h.path(suffix=".0"))
        h.write(header_line(generation=1, records_before=10) + "".join(record(i) for i in range(10, 20)), mode="w")
        os.rename(h.path(), h.path(suffix=".1"))
        h.write(header_line(generation=2, records_before=20) + "".join(record(i) for i in range(20, 25)), mode="w")
        os.unlink(h.path(suffix=".0"))
        os.unlink(h.path(suffix=".1"))
        markers = []
        for _ in range(2):  # restarted twice before the marker is acknowledged: the same marker again
            h = h.restart()
            h.cycle(1)
            markers.append(h.batches()[0])
        self.assertEqual(without_ts(markers[0]), without_ts(markers[1]))
        marker = markers[0]["data"]
        self.assertEqual((marker["file_generation"], marker["start_offset"]), (0, len(header_line()) + sum(len(record(i)) for i in range(4))))
        self.assertEqual([(r["lost_lines"], r["message"], r["level"]) for r in marker["records"]],
                         [(16, "16 lines lost: generations 0 to 1 were deleted before they were read", "WARN")])
        h2 = h.restart()
        h2.run_acking()
        self.assertEqual(h2.shipped()[1:], ["line %d" % i for i in range(20, 25)])
        self.assertEqual(len(h2.problems("log_file.lines_lost")), 1)

    def test_nothing_is_lost_when_the_library_kept_every_generation(self):
        h = Harness(self)
        h.write(header_line() + "".join(record(i) for i in range(4)), mode="w")
        h.run_acking()
        h.write("".join(record(i) for i in range(4, 10)))  # while the agent is down
        for generation in (1, 2, 3):
            os.rename(h.path(), h.path(suffix=".%d" % (generation - 1)))
            h.write(header_line(generation=generation, records_before=generation * 10) + "".join(record(i) for i in range(generation * 10, generation * 10 + 10)), mode="w")
        h2 = h.restart()
        h2.run_acking()
        self.assertEqual(h2.shipped(), ["line %d" % i for i in range(4, 40)])
        self.assertEqual(h2.problems("log_file.lines_lost"), [])
        self.assertEqual(sorted(os.listdir(h.log_dir)), ["dvic_log_" + TOKEN])

    def test_reads_a_file_rotated_by_an_older_library(self):
        h = Harness(self)
        h.write(header_line() + record(0), mode="w")
        h.cycle()
        os.rename(h.path(), h.path(suffix=".1"))  # the old name of every rotated file
        h.write(header_line(generation=1) + record(1), mode="w")
        h.run_acking()
        self.assertEqual(h.shipped(), ["line 0", "line 1"])

    def test_finishes_a_file_deleted_while_being_read(self):
        h = Harness(self)
        h.write(header_line() + record(0), mode="w")
        h.cycle()
        with open(h.path(), "a") as f:
            os.unlink(h.path())
            f.write(record(1))
            f.flush()
            h.cycle()
        self.assertEqual(h.shipped(), ["line 0", "line 1"])

    def test_replaces_invalid_utf8_and_keeps_print_output_as_raw_records(self):
        h = Harness(self)
        h.write(header_line(), mode="w")
        h.write(b"caf\xe9 au lait\n")
        h.cycle()
        rec = h.batches()[0]["data"]["records"][0]
        self.assertEqual((rec["message"], rec["level"], rec["fields"]), ("caf\ufffd au lait", "INFO", {"raw": True}))

    def test_reports_a_demo_alive_then_dead_with_its_exit_time(self):
        child = demo_process(self)
        h = Harness(self)
        h.write(header_line(child.pid), mode="w")
        h.cycle()
        first = h.demos()[0]
        self.assertEqual((first["pid"], first["alive"], first["demo"], first["user"], first["trusted"], first["file_uid"]),
                         (child.pid, True, "face-tracker", "demo", True, 0))
        child.kill()
        child.wait()
        h.cycle()
        died = h.agent.of_type("demo.state")[-1]["data"]
        self.assertEqual((died["full"], died["demos"][0]["alive"]), (False, False))
        self.assertIn("exited_at", died["demos"][0])

    def test_a_demo_gone_is_told_after_its_last_lines_are_acknowledged_its_closing_record_first(self):
        child = demo_process(self)
        h = Harness(self)
        h.write(header_line(child.pid) + record(0), mode="w")
        h.run_acking()
        self.assertEqual([d["alive"] for d in h.demos()], [True])
        # Its library writes the closing record as it exits; the agent sees the process gone.
        h.write(CLOSING_RECORD)
        child.kill()
        child.wait()
        h.cycle()
        self.assertEqual([d["alive"] for d in h.demos()], [True], "not told while its last lines wait for the server")
        h.run_acking()
        h.cycle()  # the next look at it
        self.assertEqual([d["alive"] for d in h.demos()], [True, False])
        kinds = [m["type"] for m in h.agent.frames if m["type"] in ("demo.logs", "demo.state")]
        self.assertEqual(kinds[-1], "demo.state", "the death after the batch with the closing record")
        self.assertIn("demo exited", h.shipped())

    def test_a_short_demo_gone_before_the_agent_looked_is_told_after_its_closing_record(self):
        child = demo_process(self)
        h = Harness(self)
        h.write(header_line(child.pid) + record(0) + CLOSING_RECORD, mode="w")
        child.kill()
        child.wait()  # it wrote its lines and its closing record, and ended, before the agent looked
        h.cycle()
        self.assertEqual(h.demos(), [], "not told while its lines wait for the server")
        h.run_acking()
        h.cycle()
        self.assertEqual([d["alive"] for d in h.demos()], [False])
        kinds = [m["type"] for m in h.agent.frames if m["type"] in ("demo.logs", "demo.state")]
        self.assertEqual(kinds, ["demo.logs", "demo.state"])

    def test_the_full_table_sent_on_connecting_holds_demos_found_in_the_same_round(self):
        child = demo_process(self)
        h = Harness(self)
        h.write(header_line(child.pid) + record(0), mode="w")
        h.tailer.on_connected()  # connected before the agent's first look at its log directory
        h.cycle(1)
        self.assertEqual(full_tables(h), [[(TOKEN, True)]],
                         "an empty full table would tell the server every demo of the node vanished")

    def test_an_agent_restarted_as_a_demo_exits_tells_its_closing_record_before_the_full_table(self):
        child = demo_process(self)
        h = Harness(self)
        h.write(header_line(child.pid) + record(0), mode="w")
        h.run_acking()
        # The agent restarts; meanwhile the demo writes its closing record and exits.
        h.tailer.stop()
        h.write(CLOSING_RECORD)
        child.kill()
        child.wait()
        h2 = Harness(self, state_dir=h.agent.config.state_dir, log_dir=h.log_dir)
        h2.tailer.on_connected()
        h2.cycle()
        self.assertEqual(full_tables(h2), [],
                         "a full table without the demo would make the server judge it vanished (crashed)")
        h2.run_acking()
        h2.cycle()
        sent = [(m["type"], m["data"].get("full")) for m in h2.agent.frames if m["type"] in ("demo.logs", "demo.state")]
        self.assertEqual(sent, [("demo.logs", None), ("demo.state", False), ("demo.state", True)])
        self.assertEqual(h2.shipped(), ["demo exited"])
        self.assertEqual(full_tables(h2), [[(TOKEN, False)]])

    def test_a_demo_that_exits_while_the_server_is_away_longer_than_the_wait_is_not_told_dead_before_its_closing_record(self):
        shorten_death_wait(self)
        child = demo_process(self)
        h = Harness(self)
        h.write(header_line(child.pid) + record(0), mode="w")
        h.run_acking()
        h.agent.connected.clear()
        h.tailer.on_disconnected()
        h.write(CLOSING_RECORD)
        child.kill()
        child.wait()
        h.cycle()
        time.sleep(0.3)  # away for longer than the wait
        h.cycle()
        h.agent.connected.set()
        h.agent.frames = []
        h.tailer.on_connected()
        h.cycle(1)
        self.assertEqual(full_tables(h), [[(TOKEN, True)]], "still alive for the server until its closing record is in")
        h.run_acking()
        h.cycle()
        sent = [(m["type"], m["data"].get("full")) for m in h.agent.frames if m["type"] in ("demo.logs", "demo.state")]
        self.assertEqual(sent, [("demo.state", True), ("demo.logs", None), ("demo.state", False)])
        self.assertEqual(h.shipped(), ["demo exited"])
        self.assertEqual([d["alive"] for d in h.demos()], [True, False])

    def test_the_full_table_waits_for_a_demo_gone_at_most_the_death_report_wait(self):
        shorten_death_wait(self)
        h = Harness(self)
        h.write(self.ended_demo_header() + record(0), mode="w")
        h.tailer.on_connected()
        h.cycle()
        self.assertEqual(full_tables(h), [])
        time.sleep(0.3)  # the server never answers
        h.cycle()
        self.assertEqual(full_tables(h), [[(TOKEN, False)]])

    def test_between_full_looks_only_the_demos_whose_death_waits_are_looked_at(self):
        a, b = subprocess.Popen(["sleep", "30"]), subprocess.Popen(["sleep", "30"])
        for child in (a, b):
            self.addCleanup(child.kill)
        h = Harness(self)
        h.write(header_line(a.pid) + record(0), mode="w")
        h.write(header_line(b.pid, token=OTHER_TOKEN) + record(1), token=OTHER_TOKEN, mode="w")
        h.run_acking()
        h.write(record(2))  # a's last line, not acknowledged yet
        a.kill()
        a.wait()
        h.cycle(1)  # a full look: a waits for its line
        told = len(h.demos())
        b.kill()
        b.wait()
        for _ in range(3):  # rounds between full looks
            h.ack_all()
            h.tailer.step(scan=False, liveness=False)
        self.assertEqual([(d["token"], d["alive"]) for d in h.demos()[told:]], [(TOKEN, False)], "b waits for the next full look")
        h.cycle(1)
        self.assertEqual([(d["token"], d["alive"]) for d in h.demos()[told:]], [(TOKEN, False), (OTHER_TOKEN, False)])

    def ended_demo_header(self):
        """The header line of a demo whose process ran and ended before the agent looked."""
        child = demo_process(self)
        line = header_line(child.pid)
        child.kill()
        child.wait()
        return line

    def test_a_demo_gone_is_told_anyway_when_its_lines_are_not_acknowledged_in_time(self):
        shorten_death_wait(self)
        child = demo_process(self)
        h = Harness(self)
        h.write(header_line(child.pid) + record(0), mode="w")
        h.cycle()
        child.kill()
        child.wait()
        h.cycle()
        self.assertEqual([d["alive"] for d in h.demos()], [True])
        time.sleep(0.3)  # the server never answers
        h.cycle()
        self.assertEqual([d["alive"] for d in h.demos()], [True, False])

    def test_a_reused_pid_is_not_taken_for_the_demo(self):
        h = Harness(self)
        h.write(json.dumps(header(os.getpid(), start_time=own_start_time(os.getpid()) - 1)) + "\n", mode="w")
        h.cycle()
        self.assertFalse(h.demos()[0]["alive"])


class HostileFilesTest(unittest.TestCase):
    """What any local user can put in /tmp: the agent runs as root and must survive all of it."""

    def test_files_any_user_can_create_are_skipped_alone_and_reported_once(self):
        child = demo_process(self)
        h = Harness(self)
        tokens = iter("Hostile%015dx" % i for i in range(100))
        bad = {}

        def plant(description, content):
            token = next(tokens)
            path = h.path(token)
            if callable(content):
                content(path)
            else:
                with open(path, "wb") as f:
                    f.write(content)
            bad[path] = description

        plant("a FIFO", os.mkfifo)
        plant("a directory", os.mkdir)
        plant("a socket", lambda p: self.addCleanup(_bound_socket(p).close))
        plant("a symlink to a log", lambda p: os.symlink(h.path(), p))
        plant("a symlink to a secret", lambda p: os.symlink("/etc/shadow", p))
        plant("a header line of 300 KB", b"{" + b" " * 300000)
        plant("invalid UTF-8", b'{"dvic_log":1,"pid":5,"demo":"\xff"}\n' + record(0).encode())
        plant("NaN", b'{"dvic_log":1,"pid":5,"generation":NaN}\n')
        plant("Infinity", b'{"dvic_log":1,"pid":Infinity}\n')
        plant("deep nesting", b"[" * 100000 + b"\n")
        plant("uid -1", (json.dumps(header(os.getpid(), uid=-1)) + "\n").encode())
        with open(os.path.join(VECTORS, "logs", "header.json")) as f:
            for case in json.load(f)["tests"]:
                if not case["valid"]:
                    plant(case["description"], (json.dumps(case["data"]) + "\n" + record(0)).encode())
        h.write(header_line(child.pid, token=OTHER_TOKEN) + record(7), token=OTHER_TOKEN, mode="w")
        h.write(b"", token="EmptyFileStill0000000000", mode="w")  # a header not written yet: no problem
        h.cycle(5)
        self.assertEqual(h.shipped(), ["line 7"])
        reported = dict((p["subject"], p) for p in h.problems() if p.get("subject"))
        self.assertEqual(sorted(bad), sorted(reported), "every hostile file reported, and only those")
        self.assertTrue(all(p["count"] == 1 for p in reported.values()), "reported once, not at each scan")
        self.assertEqual(len(h.demos()), 1)
        child.kill()
        child.wait()
        h.run_acking()  # its death is told once its lines are acknowledged, at the next look
        h.cycle()
        self.assertEqual([d["alive"] for d in h.demos()], [True, False])  # the good demo is seen dead
        status = {}
        h.tailer.status(status)
        self.assertEqual((status["log_files"]["followed"], status["log_files"]["skipped"]), (1, len(bad) + 1))

    def test_a_file_gone_or_replaced_between_listing_and_opening(self):
        h = Harness(self)
        scope = agent.Scope("host", h.log_dir, "/proc", None, "/etc/passwd")
        h.tailer._examine_safely(scope, h.path(), (TOKEN, None))  # listed, then deleted
        h.write(header_line(), mode="w")
        st = os.lstat(h.path())
        os.unlink(h.path())
        os.symlink("/etc/passwd", h.path())  # swapped for a symlink after lstat
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        h.tailer._open_new(scope, h.path(), (TOKEN, None), st, identity)
        self.assertEqual((h.tailer.by_path, h.problems("log_file.error")), ({}, []))
        self.assertEqual(len(h.problems("log_file.unreadable")), 1)  # O_NOFOLLOW refused it

    @unittest.skipUnless(os.geteuid() == 0, "needs root to run as another user")
    def test_a_file_the_agent_cannot_open_is_skipped_alone(self):
        # Run as nobody, so that a root-only file gives EACCES as it would on a hardened system.
        root = temp_dir(self)
        os.chmod(root, 0o755)
        for sub in ("tmp", "state"):
            os.mkdir(os.path.join(root, sub))
            os.chmod(os.path.join(root, sub), 0o777)
        for token, mode, line in ((TOKEN, 0o600, "secret"), (OTHER_TOKEN, 0o644, "public")):
            path = os.path.join(root, "tmp", "dvic_log_" + token)
            with open(path, "w") as f:
                f.write(json.dumps(header(os.getpid(), token=token)) + "\n" + record(0, text=line + " %d"))
            os.chmod(path, mode)
        script = ("import sys, json; sys.path.insert(0, %r); from tests import support; import unittest\n"
                  "t = unittest.TestCase(); a = support.make_agent(t, log_dir=%r, state_dir=%r)\n"
                  "d = a.feature(support.dvic_agent.DemoLogs)\n[d.step() for _ in range(3)]\n"
                  "print(json.dumps([[r['message'] for m in a.of_type('demo.logs') for r in m['data']['records']], a.problems.codes()]))\n"
                  % (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.path.join(root, "tmp"), os.path.join(root, "state")))
        result = subprocess.run([PYTHON, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)), timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout.strip().splitlines()[-1]), [["public 0"], ["log_file.unreadable"]])


def without_ts(message):
    data = dict(message["data"])
    data["records"] = [dict(r, ts="") for r in data["records"]]
    return data


def _bound_socket(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    return sock


@unittest.skipUnless(os.geteuid() == 0, "needs root to own files as other users")
class TrustTest(unittest.TestCase):
    def setUp(self):
        self.sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: os.setuid(1000))
        self.addCleanup(self.sleeper.kill)

    def follow(self, owner, claimed_uid, pid, header_user="demo", **config):
        etc = tempfile.mkdtemp(prefix="dvic-etc-")
        self.addCleanup(shutil.rmtree, etc, True)
        with open(os.path.join(etc, "passwd"), "w") as f:
            f.write("root:x:0:0::/root:/bin/sh\ndemo:x:1000:1000::/home/demo:/bin/sh\nother:x:1001:1001::/home/other:/bin/sh\n")
        h = Harness(self, etc_root=etc, **config)
        h.write(json.dumps(header(pid, uid=claimed_uid, user=header_user)) + "\n" + record(0), mode="w")
        os.chown(h.path(), owner, owner)
        h.cycle()
        return h

    def test_a_file_owned_by_the_user_its_header_and_process_name_is_trusted(self):
        h = self.follow(1000, 1000, self.sleeper.pid)
        self.assertEqual([(d["trusted"], d["file_uid"], d["uid"]) for d in h.demos()], [(True, 1000, 1000)])
        self.assertEqual(h.problems("log_file.untrusted"), [])

    def test_a_trusted_demo_is_shown_with_its_file_owners_name_whatever_the_header_says(self):
        h = self.follow(1000, 1000, self.sleeper.pid, header_user="root")
        self.assertEqual([(d["trusted"], d["user"]) for d in h.demos()], [(True, "demo")])

    def test_a_root_owned_file_is_trusted(self):
        h = self.follow(0, 1000, self.sleeper.pid)
        self.assertEqual([d["trusted"] for d in h.demos()], [True])

    def test_a_file_claiming_another_user_is_shown_untrusted(self):
        h = self.follow(1001, 1000, self.sleeper.pid)
        self.assertEqual([(d["trusted"], d["file_uid"], d["uid"]) for d in h.demos()], [(False, 1001, 1000)])
        self.assertEqual(h.shipped(), ["line 0"])
        self.assertIn("claims uid 1000", h.problems("log_file.untrusted")[0]["message"])

    def test_a_file_claiming_a_process_of_another_user_is_shown_untrusted(self):
        h = self.follow(1000, 1000, os.getpid())  # the header names a root process
        self.assertEqual([d["trusted"] for d in h.demos()], [False])
        self.assertIn("runs as uid 0", h.problems("log_file.untrusted")[0]["message"])

    def test_untrusted_files_can_be_ignored(self):
        h = self.follow(1001, 1000, self.sleeper.pid, untrusted_log_files="ignore")
        self.assertEqual((h.demos(), h.shipped()), ([], []))
        self.assertIn("ignored", h.problems("log_file.untrusted")[0]["message"])

    def test_a_rotated_file_of_another_owner_does_not_join_a_demo_log(self):
        h = self.follow(1000, 1000, self.sleeper.pid)
        h.write(json.dumps(header(self.sleeper.pid, generation=5, uid=1001)) + "\n" + record(9), suffix=".5", mode="w")
        os.chown(h.path(suffix=".5"), 1001, 1001)
        h.cycle()
        self.assertEqual(h.shipped(), ["line 0"])
        self.assertEqual(len(h.problems("log_file.owner_mismatch")), 1)


class LimitsTest(unittest.TestCase):
    def test_every_frame_fits_the_servers_limit_whatever_the_lines(self):
        h = Harness(self, log_batch_max_records=1000)
        h.agent.max_frame_bytes = 65536  # as a server with a small limit would say in its welcome
        lines = ["%04d " % i + "y" * 1500 for i in range(2000)] + ["big %d " % i + "z" * 200000 for i in range(3)]
        h.write(header_line() + "".join(record(0, text=line) for line in lines), mode="w")
        h.write(CONTROL * 2000 + b"\n")  # 62 KB that escape to 370 KB
        h.run_acking(200)
        shipped = [r for m in h.batches() for r in m["data"]["records"]]
        joined, current = [], ""
        for r in shipped:
            current += r["message"]
            if not r.get("split"):
                joined.append(current)
                current = ""
        self.assertEqual(joined[:2000], lines[:2000])
        self.assertEqual([json.loads(j)["message"] for j in joined[2000:2003]], lines[2000:])
        self.assertEqual(joined[2003], CONTROL.decode() * 2000)

    def test_memory_for_unsent_records_is_capped_per_file_and_in_total(self):
        h = Harness(self, log_buffer_max_bytes=2 * 1024 * 1024)
        h.agent.connected.clear()  # the server is unreachable
        for i in range(10):
            token = "Sparse%016dx" % i
            h.write(header_line(token=token), token=token, mode="w")
            with open(h.path(token), "r+b") as f:
                f.truncate(1 << 30)  # 1 GiB of holes: reads as zeros, no newline
        peak = 0
        for _ in range(20):
            h.cycle(1)
            peak = max(peak, h.tailer.meter[0])
            self.assertTrue(all(f.stream.pending_bytes <= h.agent.frame_budget() + 6 * agent.READ_CHUNK_BYTES
                                for f in h.tailer.busy))
        self.assertGreater(peak, 1024 * 1024)
        self.assertLess(peak, 2 * 1024 * 1024 + 6 * agent.READ_CHUNK_BYTES)
        status = {}
        h.tailer.status(status)
        self.assertEqual(status["log_files"]["max_buffered_bytes"], 2 * 1024 * 1024)

    def test_thousands_of_files_with_few_descriptors(self):
        h = Harness(self, max_open_log_files=8)
        tokens = ["Many%018dx" % i for i in range(60)]
        for token in tokens:
            h.write(header_line(token=token) + record(0) + record(1), token=token, mode="w")
        for _ in range(40):
            h.cycle(1)
            self.assertLessEqual(len(h.tailer.open_lru), 8)
            h.ack_all()
        self.assertEqual(sorted(m["data"]["token"] for m in h.batches() for _ in m["data"]["records"]), sorted(tokens * 2))
        for token in tokens[:5]:  # written again while closed: found again by name
            h.write(record(2), token=token)
        h.cycle(3)
        self.assertEqual(len([r for r in h.shipped() if r == "line 2"]), 5)

    def test_a_closed_file_is_reopened_only_if_its_name_is_still_the_same_file(self):
        h = Harness(self)
        h.write(header_line() + record(0), mode="w")
        h.cycle()
        f = h.tailer.by_path[h.path()]
        h.tailer._close(f)
        kept = open(h.path())  # keeps the old inode allocated, so the new file cannot reuse its number
        self.addCleanup(kept.close)
        os.unlink(h.path())
        h.write(header_line() + record(5), mode="w")  # another file under the name
        self.assertFalse(h.tailer._reopen(f))
        self.assertIsNone(f.path)


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"), "needs root and unshare")
class NamespaceTest(unittest.TestCase):
    """A demo in bare namespaces (unshare) with its own /tmp and /proc. The agent sees only that
    process (a proc root of its own) and a log directory of its own: never the machine's."""

    def test_discovers_a_demo_in_its_own_mount_and_pid_namespace_and_sees_it_die(self):
        root = temp_dir(self)
        log_dir = os.path.join(root, "logs")  # the same path inside the namespace's own /tmp mount
        proc_view = os.path.join(root, "proc")
        os.makedirs(log_dir)
        os.makedirs(proc_view)
        script = ("mount -t tmpfs tmpfs %s && "
                  "st=$(cut -d' ' -f22 /proc/$$/stat) && "
                  "printf '{\"dvic_log\":1,\"token\":\"%s\",\"generation\":0,\"demo\":\"ns-demo\",\"pid\":%%s,\"start_time\":%%s}\\n' $$ $st > %s/dvic_log_%s && "
                  "printf '{\"ts\":\"2026-11-24T10:00:00.000Z\",\"level\":\"WARN\",\"message\":\"inside\"}\\n' >> %s/dvic_log_%s && "
                  "exec sleep 30") % (log_dir, TOKEN, log_dir, TOKEN, log_dir, TOKEN)
        child = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script])
        self.addCleanup(lambda: (child.poll() is None) and os.kill(child.pid, signal.SIGKILL))
        os.symlink("/proc/self", os.path.join(proc_view, "self"))
        os.symlink("/proc/%d" % child.pid, os.path.join(proc_view, str(child.pid)))
        wait_until(lambda: agent.readlink("/proc/%d/ns/mnt" % child.pid) != agent.readlink("/proc/self/ns/mnt"), 10, "the namespace")
        self.assertFalse(os.path.exists(os.path.join(log_dir, "dvic_log_" + TOKEN)))
        h = Harness(self, log_dir=log_dir, proc_root=proc_view, container_logs=True)

        def shipped():
            h.cycle(1)
            return h.batches()
        batch = wait_until(shipped, 10, "the namespaced demo's log")[0]["data"]
        self.assertEqual((batch["demo"], batch["records"][0]["message"]), ("ns-demo", "inside"))
        demo = h.demos()[0]
        self.assertEqual((demo["alive"], demo["pid"], demo["container"]["runtime"]), (True, 1, "namespace"))
        child.kill()
        child.wait()

        def died():
            h.cycle(1)
            return [d for d in h.demos() if not d["alive"]]
        self.assertEqual(wait_until(died, 10, "death")[0]["token"], TOKEN)


if __name__ == "__main__":
    unittest.main()
