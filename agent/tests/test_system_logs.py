"""System logs: syslog lines keep their own time, level and program; a syslog file followed by
inode and offset, the journal through journalctl; both through the demo logs' shipper."""
import json
import os
import stat
import threading
import time
import unittest

from tests.support import dvic_agent as agent, make_agent, temp_dir, wait_until

NOW = 1795600000.0  # 2026-11-25, for the cases that need a "now"


class Harness(object):
    """A real agent's SystemLogs worker in a thread, its frames captured."""

    def __init__(self, test, state_dir=None, **config):
        self.agent = make_agent(test, **dict(config, **({"state_dir": state_dir} if state_dir else {})))
        self.feature = self.agent.feature(agent.SystemLogs)
        self.thread = threading.Thread(target=self.feature.run, daemon=True)
        self.thread.start()
        test.addCleanup(self.stop)

    def batches(self):
        return self.agent.of_type("system.logs")

    def stop(self):
        self.agent.stop_event.set()
        self.thread.join(10)

    def status(self):
        data = {}
        self.feature.status(data)
        return data["system_logs"]


def without_ts(message):
    """A batch's content but the read time of lines that carry no time of their own."""
    return dict(message["data"], records=[dict(r, ts="") for r in message["data"]["records"]])


class SyslogParsingTest(unittest.TestCase):
    def test_lines_keep_their_time_level_program_and_pid(self):
        local = agent.iso_time(time.mktime((2026, 11, 25, 17, 30, 0, 0, 0, -1)))
        cases = [
            ("Nov 25 17:30:00 pi sshd[812]: Accepted publickey for demo",
             {"ts": local, "level": "INFO", "message": "sshd[812]: Accepted publickey for demo", "identifier": "sshd", "pid": 812}),
            ("2026-11-25T17:30:00.123456+00:00 pi cron[77]: (root) CMD (true)",
             {"ts": "2026-11-25T17:30:00.123Z", "level": "INFO", "message": "cron[77]: (root) CMD (true)", "identifier": "cron", "pid": 77}),
            ("2026-11-25T18:30:00.5+01:00 pi kernel: usb 1-1: new device",
             {"ts": "2026-11-25T17:30:00.500Z", "level": "INFO", "message": "kernel: usb 1-1: new device", "identifier": "kernel"}),
            ("<11>Nov 25 17:30:00 pi smartd[9]: disk failing",
             {"ts": local, "level": "ERROR", "message": "smartd[9]: disk failing", "identifier": "smartd", "pid": 9}),
            ("<12>2026-11-25T17:30:00Z pi app: low battery",
             {"ts": "2026-11-25T17:30:00.000Z", "level": "WARN", "message": "app: low battery", "identifier": "app"}),
            ('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\\]"] \ufeffAn event',
             {"ts": "2003-10-11T22:14:15.003Z", "level": "INFO", "message": "evntslog: An event", "identifier": "evntslog"}),
            ("<34>1 2003-10-11T22:14:15.003Z host su 4242 ID47 - 'su root' failed",
             {"ts": "2003-10-11T22:14:15.003Z", "level": "FATAL", "message": "su[4242]: 'su root' failed", "identifier": "su", "pid": 4242}),
            ("<15>1 - host app - - -", {"ts": agent.iso_time(NOW), "level": "DEBUG", "message": "app: ", "identifier": "app"}),
            ("just some words", {"ts": agent.iso_time(NOW), "level": "INFO", "message": "just some words"}),
            ("<999>Nov 25 17:30:00 pi x: y", {"ts": agent.iso_time(NOW), "level": "INFO", "message": "<999>Nov 25 17:30:00 pi x: y"}),
        ]
        for line, expected in cases:
            with self.subTest(line=line):
                self.assertEqual(agent.parse_syslog_line(line, NOW), expected)

    def test_a_december_line_read_in_january_is_from_last_year(self):
        january = time.mktime((2027, 1, 1, 0, 5, 0, 0, 0, -1))
        parsed = agent.parse_syslog_line("Dec 31 23:59:00 pi app: late", january)
        self.assertEqual(parsed["ts"], agent.iso_time(time.mktime((2026, 12, 31, 23, 59, 0, 0, 0, -1))))

    def test_rfc3339(self):
        self.assertEqual(agent.parse_rfc3339("1970-01-01T00:00:00Z"), 0)
        self.assertEqual(agent.parse_rfc3339("2000-03-01T00:00:00+00:00"), 951868800)
        self.assertEqual(agent.parse_rfc3339("2024-02-29T12:00:00.25-02:00"), 1709215200.25)
        self.assertIsNone(agent.parse_rfc3339("2024-13-01T00:00:00Z"))


class JournalRecordTest(unittest.TestCase):
    def test_maps_priority_unit_pid_sequence_number_and_byte_messages(self):
        record = agent.journal_record({"__REALTIME_TIMESTAMP": "1764000000123456", "PRIORITY": "3", "MESSAGE": "disk failing",
                                       "_SYSTEMD_UNIT": "smartd.service", "SYSLOG_IDENTIFIER": "smartd", "_PID": "812", "__SEQNUM": "77"})
        self.assertEqual(record, {"ts": agent.iso_time(1764000000.123456), "level": "ERROR", "message": "disk failing",
                                  "unit": "smartd.service", "identifier": "smartd", "pid": 812, "offset": 77})
        self.assertEqual(agent.journal_record({"MESSAGE": [104, 105, 255], "PRIORITY": "4"})["message"], "hi\ufffd")
        self.assertEqual(agent.journal_record({"MESSAGE": "x", "PRIORITY": "0"})["level"], "FATAL")
        self.assertEqual(agent.journal_record({"MESSAGE": "x", "PRIORITY": [1], "__REALTIME_TIMESTAMP": "x"})["level"], "INFO")


class SyslogFileTest(unittest.TestCase):
    def setUp(self):
        self.dir = temp_dir(self)
        self.path = os.path.join(self.dir, "syslog")

    def write(self, text, mode="a"):
        with open(self.path, mode) as f:
            f.write(text)

    def test_follows_a_syslog_file_and_resumes_after_the_acknowledged_offset(self):
        self.write("Nov 24 10:00:00 pi kernel: usb 1-1: new device\n<11>Nov 24 10:00:01 pi sshd[9]: refused\n", "w")
        h = Harness(self, system_logs="syslog", syslog_path=self.path)
        first = wait_until(h.batches, 10, "a batch")[0]
        self.assertEqual([(r["message"], r["level"], r.get("identifier"), r.get("pid")) for r in first["data"]["records"]],
                         [("kernel: usb 1-1: new device", "INFO", "kernel", None), ("sshd[9]: refused", "ERROR", "sshd", 9)])
        self.assertEqual(first["data"]["stream"], "syslog:%d" % os.stat(self.path).st_ino)
        self.assertEqual(first["data"]["records"][1]["offset"], len("Nov 24 10:00:00 pi kernel: usb 1-1: new device\n"))
        h.agent.answer(first)
        wait_until(lambda: os.path.exists(os.path.join(h.agent.config.state_dir, "system-log-cursor.json")), 5, "cursor saved")
        h.stop()
        self.write("Nov 24 10:00:02 pi cron[1]: tick\n")
        again = Harness(self, state_dir=h.agent.config.state_dir, system_logs="syslog", syslog_path=self.path)
        batch = wait_until(again.batches, 10, "the new line")[0]
        self.assertEqual([r["message"] for r in batch["data"]["records"]], ["cron[1]: tick"])

    def test_resends_an_unacknowledged_batch_after_a_reconnection(self):
        self.write("line one\n", "w")
        h = Harness(self, system_logs="syslog", syslog_path=self.path)
        first = wait_until(h.batches, 10, "a batch")[0]
        h.agent.connected.clear()
        h.feature.on_disconnected()
        h.agent.connected.set()
        resent = wait_until(lambda: len(h.batches()) >= 2 and h.batches(), 10, "the batch again")[1]
        self.assertEqual(without_ts(resent), without_ts(first))

    def test_a_batch_the_server_did_not_store_is_sent_again_from_its_start(self):
        self.write("one\ntwo\n", "w")
        h = Harness(self, system_logs="syslog", syslog_path=self.path)
        first = wait_until(h.batches, 10, "a batch")[0]
        h.agent.answer(first, "logs.nack", code="overloaded", message="busy", retry_after_ms=0)
        again = wait_until(lambda: h.batches()[1:], 10, "the batch again")[0]
        self.assertEqual(without_ts(again), without_ts(first))
        self.assertNotEqual(again["id"], first["id"])

    def test_finishes_a_rotated_file_before_the_new_one(self):
        self.write("old 1\n", "w")
        h = Harness(self, system_logs="syslog", syslog_path=self.path)
        h.agent.answer(wait_until(h.batches, 10, "a batch")[0])
        with open(self.path, "a") as f:
            os.rename(self.path, self.path + ".1")
            self.write("new 1\n", "w")
            f.write("old 2\n")
        h.agent.answer(wait_until(lambda: h.batches()[1:], 10, "the old file's last line")[0])
        wait_until(lambda: len(h.batches()) >= 3, 10, "the new file's line")
        self.assertEqual([r["message"] for m in h.batches() for r in m["data"]["records"]], ["old 1", "old 2", "new 1"])
        self.assertNotEqual(h.batches()[1]["data"]["stream"], h.batches()[2]["data"]["stream"])

    def test_says_when_the_file_cannot_be_read(self):
        h = Harness(self, system_logs="syslog", syslog_path=os.path.join(self.dir, "missing"))
        status = wait_until(lambda: h.status().get("message") and h.status(), 10, "a status")
        self.assertEqual((status["mode"], status["readable"]), ("syslog", False))
        self.assertIn("No such file", status["message"])


class JournalTest(unittest.TestCase):
    def setUp(self):
        self.dir = temp_dir(self)

    def stand_in(self, body):
        """journald cannot run here (systemd is not PID 1): a script prints what journalctl would."""
        script = os.path.join(self.dir, "journalctl")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho \"$@\" >> %s\n%s\n" % (os.path.join(self.dir, "args"), body))
        os.chmod(script, stat.S_IRWXU)
        return script

    def test_reads_the_journal_through_journalctl_and_resumes_after_its_cursor(self):
        entries = [{"__CURSOR": "s=a;i=%d" % i, "__SEQNUM": str(i), "__SEQNUM_ID": "abc", "__REALTIME_TIMESTAMP": "1764000000000000",
                    "PRIORITY": "6", "MESSAGE": "entry %d" % i, "_SYSTEMD_UNIT": "demo.service"} for i in range(1, 4)]
        script = self.stand_in("cat <<'EOF'\n%s\nEOF\nexec sleep 60" % "\n".join(json.dumps(e) for e in entries))
        h = Harness(self, system_logs="journal", journalctl=script)
        batch = wait_until(h.batches, 10, "a journal batch")[0]
        self.assertEqual((batch["data"]["source"], batch["data"]["stream"], batch["data"]["cursor"]), ("journal", "journal:abc", "s=a;i=3"))
        self.assertEqual([(r["message"], r["offset"], r["unit"]) for r in batch["data"]["records"]],
                         [("entry 1", 1, "demo.service"), ("entry 2", 2, "demo.service"), ("entry 3", 3, "demo.service")])
        self.assertEqual(h.status(), {"mode": "journal", "readable": True})
        h.agent.answer(batch)
        wait_until(lambda: os.path.exists(os.path.join(h.agent.config.state_dir, "system-log-cursor.json")), 5, "cursor saved")
        h.stop()
        again = Harness(self, state_dir=h.agent.config.state_dir, system_logs="journal", journalctl=script)
        args_file = os.path.join(self.dir, "args")
        wait_until(lambda: len(agent.read_optional(args_file).splitlines()) == 2, 10, "journalctl started again")
        again.stop()
        first_args, second_args = agent.read_text(args_file).splitlines()
        self.assertIn("--lines 0", first_args)
        self.assertIn("--after-cursor s=a;i=3", second_args)

    def test_a_refused_batch_is_read_again_from_its_first_entry(self):
        entries = [{"__CURSOR": "c%d" % i, "__SEQNUM": str(i), "__SEQNUM_ID": "abc", "MESSAGE": "e%d" % i} for i in (1, 2)]
        script = self.stand_in("cat <<'EOF'\n%s\nEOF\nexec sleep 60" % "\n".join(json.dumps(e) for e in entries))
        h = Harness(self, system_logs="journal", journalctl=script)
        first = wait_until(h.batches, 10, "a journal batch")[0]
        h.agent.answer(first, "logs.nack", code="storage_full", message="full", retry_after_ms=0)
        wait_until(lambda: len(agent.read_optional(os.path.join(self.dir, "args")).splitlines()) == 2, 10, "journalctl again")
        self.assertIn("--cursor c1", agent.read_text(os.path.join(self.dir, "args")).splitlines()[1])

    def test_says_why_the_journal_cannot_be_read(self):
        script = self.stand_in("echo 'No journal files were found.' >&2\nexit 1")
        h = Harness(self, system_logs="journal", journalctl=script)
        status = wait_until(lambda: h.status().get("message") and h.status(), 10, "a status")
        self.assertEqual(status, {"mode": "journal", "readable": False, "message": "No journal files were found."})
        h.stop()
        missing = Harness(self, system_logs="journal", journalctl=os.path.join(self.dir, "nowhere"))
        self.assertRegex(wait_until(lambda: missing.status().get("message"), 10, "a status"), "not found|No such file")
        self.assertFalse(missing.status()["readable"])

    def test_with_neither_journal_nor_syslog_the_status_says_so(self):
        config = agent.Config({"server_url": "ws://x/", "node_id": "n", "journalctl": os.path.join(self.dir, "nowhere"),
                               "syslog_path": os.path.join(self.dir, "nowhere")})
        mode, why = agent.choose_system_logs(config)
        self.assertEqual(mode, "off")
        self.assertIn("no journal", why)


if __name__ == "__main__":
    unittest.main()
