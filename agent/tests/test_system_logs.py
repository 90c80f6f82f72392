"""System logs: a syslog file followed by inode and offset, and the journal through journalctl."""
import json
import os
import shutil
import stat
import tempfile
import threading
import unittest

from tests.support import dvic_agent as agent, wait_until
from tests.test_log_tailer import FakeAgent


class Harness(object):
    """SystemLogs on a fake agent, its worker in a thread, acknowledging like the server."""

    def __init__(self, test, **config):
        self.fake = FakeAgent(test.state_dir, test.dir)
        for key, value in config.items():
            setattr(self.fake.config, key, value)
        self.feature = agent.SystemLogs(self.fake)  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.feature.workers()[0], daemon=True)
        self.thread.start()

    def batches(self):
        return self.fake.of_type("system.logs")

    def ack(self, message):
        self.feature.on_ack({"type": "logs.ack", "id": message["id"], "data": {"stored": len(message["data"]["records"]), "duplicates": 0}})

    def stop(self):
        self.fake.stop_event.set()
        self.thread.join(10)


class JournalRecordTest(unittest.TestCase):
    def test_maps_priority_unit_pid_sequence_number_and_byte_messages(self):
        record = agent.journal_record({"__REALTIME_TIMESTAMP": "1764000000123456", "PRIORITY": "3", "MESSAGE": "disk failing",
                                       "_SYSTEMD_UNIT": "smartd.service", "SYSLOG_IDENTIFIER": "smartd", "_PID": "812", "__SEQNUM": "77"})
        self.assertEqual(record, {"ts": agent.iso_time(1764000000.123456), "level": "ERROR", "message": "disk failing",
                                  "unit": "smartd.service", "identifier": "smartd", "pid": 812, "offset": 77})
        self.assertEqual(agent.journal_record({"MESSAGE": [104, 105, 255], "PRIORITY": "4"})["message"], "hi\ufffd")
        self.assertEqual(agent.journal_record({"MESSAGE": "x", "PRIORITY": "0"})["level"], "FATAL")


class SystemLogsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.state_dir = os.path.join(self.dir, "state")
        os.makedirs(self.state_dir)

    def test_follows_a_syslog_file_and_resumes_after_the_acknowledged_offset(self):
        path = os.path.join(self.dir, "syslog")
        with open(path, "w") as f:
            f.write("Nov 24 10:00:00 pi kernel: usb 1-1: new device\nNov 24 10:00:01 pi sshd[9]: accepted\n")
        h = Harness(self, system_logs="syslog", syslog_path=path)
        first = wait_until(h.batches, 10, "a batch")[0]
        self.assertEqual([r["message"] for r in first["data"]["records"]], ["Nov 24 10:00:00 pi kernel: usb 1-1: new device", "Nov 24 10:00:01 pi sshd[9]: accepted"])
        self.assertEqual(first["data"]["stream"], "syslog:%d" % os.stat(path).st_ino)
        self.assertEqual(first["data"]["records"][1]["offset"], len("Nov 24 10:00:00 pi kernel: usb 1-1: new device\n"))
        self.assertIsNone(agent.validate_message(first, "agent-to-server"))
        h.ack(first)
        wait_until(lambda: os.path.exists(os.path.join(self.state_dir, "system-log-cursor.json")), 5, "cursor saved")
        h.stop()
        with open(path, "a") as f:
            f.write("Nov 24 10:00:02 pi cron[1]: tick\n")
        again = Harness(self, system_logs="syslog", syslog_path=path)
        batch = wait_until(again.batches, 10, "the new line")[0]
        self.assertEqual([r["message"] for r in batch["data"]["records"]], ["Nov 24 10:00:02 pi cron[1]: tick"])
        again.stop()

    def test_resends_an_unacknowledged_batch_after_a_reconnection(self):
        path = os.path.join(self.dir, "syslog")
        with open(path, "w") as f:
            f.write("line one\n")
        h = Harness(self, system_logs="syslog", syslog_path=path)
        first = wait_until(h.batches, 10, "a batch")[0]
        h.fake.connected.clear()
        h.feature.on_disconnected()
        h.fake.connected.set()
        resent = wait_until(lambda: len(h.batches()) >= 2 and h.batches(), 10, "the batch again")[1]
        self.assertEqual(resent, first)
        h.stop()

    def test_reads_the_journal_through_journalctl_and_resumes_after_its_cursor(self):
        # journald cannot run here (systemd is not PID 1): a stand-in prints what journalctl -o json prints.
        script = os.path.join(self.dir, "journalctl")
        args_file = os.path.join(self.dir, "args")
        entries = [{"__CURSOR": "s=a;i=%d" % i, "__SEQNUM": str(i), "__SEQNUM_ID": "abc", "__REALTIME_TIMESTAMP": "1764000000000000",
                    "PRIORITY": "6", "MESSAGE": "entry %d" % i, "_SYSTEMD_UNIT": "demo.service"} for i in range(1, 4)]
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho \"$@\" >> %s\ncat <<'EOF'\n%s\nEOF\nexec sleep 60\n" % (args_file, "\n".join(json.dumps(e) for e in entries)))
        os.chmod(script, stat.S_IRWXU)
        h = Harness(self, system_logs="journal", journalctl=script)
        batch = wait_until(h.batches, 10, "a journal batch")[0]
        self.assertEqual((batch["data"]["source"], batch["data"]["stream"], batch["data"]["cursor"]), ("journal", "journal:abc", "s=a;i=3"))
        self.assertEqual([(r["message"], r["offset"], r["unit"]) for r in batch["data"]["records"]],
                         [("entry 1", 1, "demo.service"), ("entry 2", 2, "demo.service"), ("entry 3", 3, "demo.service")])
        h.ack(batch)
        wait_until(lambda: os.path.exists(os.path.join(self.state_dir, "system-log-cursor.json")), 5, "cursor saved")
        h.stop()
        again = Harness(self, system_logs="journal", journalctl=script)
        wait_until(lambda: len(agent.read_optional(args_file).splitlines()) == 2, 10, "journalctl started again")
        again.stop()
        with open(args_file) as f:
            first_args, second_args = f.read().splitlines()
        self.assertIn("--lines 0", first_args)
        self.assertIn("--after-cursor s=a;i=3", second_args)


if __name__ == "__main__":
    unittest.main()
