"""The agent's own machinery: supervised workers, problems and agent.status, reconnect policy,
protocol constants, the frame limit on everything it sends."""
import json
import os
import socket
import threading
import unittest

from tests.support import REPO_DIR, dvic_agent as agent, make_agent, wait_until


def load_constants():
    with open(os.path.join(REPO_DIR, "protocol", "constants.json")) as f:
        return json.load(f)


class WorkerTest(unittest.TestCase):
    def start(self, name, first_run):
        """A worker whose first run does first_run() and whose later runs wait for the stop."""
        a = make_agent(self)
        self.addCleanup(a.stop_event.set)
        runs = []

        def loop():
            runs.append(1)
            if len(runs) == 1:
                first_run()
            else:
                a.stop_event.wait(30)
        worker = agent.Worker(a, name, loop)
        worker.start()
        wait_until(lambda: len(runs) == 2, 10, "the restart")
        return wait_until(lambda: worker.alive and worker.status(), 5, "alive again")

    def test_a_worker_that_fails_is_restarted_and_reported(self):
        def fail():
            raise ValueError("boom")
        status = self.start("flaky", fail)
        self.assertEqual((status["name"], status["restarts"]), ("flaky", 1))
        self.assertIn("ValueError: boom", status["last_error"])
        self.assertIn("test_agent.py", status["last_error"])  # where it failed

    def test_a_worker_whose_loop_returns_is_restarted_too(self):
        status = self.start("quitter", lambda: None)
        self.assertEqual((status["restarts"], status["last_error"]), (1, "the loop returned"))

    def test_the_agents_workers_are_in_its_status(self):
        a = make_agent(self, system_logs="syslog", syslog_path="/nonexistent/syslog")
        names = [w["name"] for w in a.status_data()["workers"]]
        self.assertEqual(names, ["metrics", "status", "demo-logs", "system-logs"])
        self.assertIsNone(agent.validate_message({"type": "agent.status", "data": a.status_data()}, "agent-to-server"))


class ProblemsTest(unittest.TestCase):
    def test_a_problem_is_listed_once_with_a_count(self):
        problems = agent.Problems()
        for _ in range(3):
            problems.report("log_file.not_regular", "not followed: it is a FIFO", "/tmp/dvic_log_x")
        listed = problems.snapshot()
        self.assertEqual([(p["code"], p["count"], p["subject"]) for p in listed], [("log_file.not_regular", 3, "/tmp/dvic_log_x")])
        problems.clear("/tmp/dvic_log_x")
        self.assertEqual(problems.snapshot(), [])

    def test_the_list_is_bounded(self):
        problems = agent.Problems()
        for i in range(500):
            problems.report("log_file.bad_header", "bad header", "/tmp/dvic_log_%d" % i)
        listed = problems.snapshot()
        self.assertEqual(len(listed), agent.MAX_PROBLEMS)
        self.assertEqual(listed[-1]["code"], "problems.too_many")
        self.assertEqual(listed[-1]["count"], 500 - agent.MAX_PROBLEMS + 1)

    def test_the_status_fits_a_small_frame(self):
        problems = agent.Problems()
        for i in range(100):
            problems.report("log_file.bad_header", "\u0001" * 1000, "/tmp/" + "x" * 500 + str(i))
        frame = agent.fit_status({"workers": [], "problems": problems.snapshot()}, 65536)
        self.assertLessEqual(len(frame), 65536)
        self.assertIsNone(agent.validate_message(json.loads(frame), "agent-to-server"))

    def test_status_goes_out_after_connecting_and_when_it_changes(self):
        a = make_agent(self)
        self.addCleanup(a.stop)
        threading.Thread(target=a._status_loop, daemon=True).start()
        a.status_changed()
        first = wait_until(lambda: a.of_type("agent.status"), 10, "the first status")[0]["data"]
        self.assertEqual(first["problems"], [])
        a.problems.report("log_file.unreadable", "cannot open it: Permission denied", "/tmp/dvic_log_y")
        a.status_changed()
        later = wait_until(lambda: [m for m in a.of_type("agent.status") if m["data"]["problems"]], 10, "a new status")[0]["data"]
        self.assertEqual(later["problems"][0]["code"], "log_file.unreadable")


class ReconnectTest(unittest.TestCase):
    def test_the_backoff_starts_over_after_a_connection_that_lasted(self):
        self.assertEqual(agent.next_attempt(6, agent.STABLE_CONNECTION_S), 0)
        self.assertEqual(agent.next_attempt(6, 5.0), 7)
        self.assertEqual(agent.next_attempt(0, 0.0), 1)
        self.assertLessEqual(max(agent.reconnect_delay(0, 1006) for _ in range(100)), agent.BACKOFF_BASE_S)

    def test_refusals_for_good_and_a_full_server_space_attempts_out(self):
        close = dict((name, item["code"]) for name, item in load_constants()["CLOSE_CODES"].items())
        for name in ("nodeRevoked", "unknownNode", "authFailed"):
            self.assertGreaterEqual(min(agent.reconnect_delay(0, close[name]) for _ in range(50)), agent.BACKOFF_CAP_S / 2, name)
        self.assertGreaterEqual(min(agent.reconnect_delay(0, close["tryAgainLater"]) for _ in range(50)), 5.0)


class ConstantsTest(unittest.TestCase):
    def test_the_agent_uses_the_protocol_constants(self):
        constants = load_constants()
        self.assertEqual(agent.TERMINAL_WINDOW_BYTES, constants["TERMINAL_WINDOW_BYTES"])
        self.assertEqual(agent.MAX_FRAME_BYTES, constants["MAX_FRAME_BYTES"])
        self.assertEqual(agent.CLOSE, dict((name, item["code"]) for name, item in constants["CLOSE_CODES"].items()))


class FrameLimitTest(unittest.TestCase):
    def test_a_message_over_the_servers_limit_is_not_sent_and_is_reported(self):
        a = make_agent(self)
        ours, theirs = socket.socketpair()
        self.addCleanup(theirs.close)
        ws = agent.WebSocket(ours)
        self.addCleanup(ws.shutdown)
        a.ws = ws
        a.max_frame_bytes = 65536
        send = agent.Agent.send_frame  # the real send path, not the capturing one
        self.assertFalse(send(a, agent.encode_json({"type": "exec.output", "data": {"data": "x" * 70000}})))
        self.assertTrue(send(a, agent.encode_json({"type": "exec.output", "data": {"data": "small"}})))
        theirs.settimeout(5)
        frame = theirs.recv(65536)
        self.assertEqual(frame[0], 0x81)  # one text frame, the small one
        self.assertLess(len(frame), 100)
        self.assertEqual([p["code"] for p in a.problems.snapshot()], ["connection.message_too_big"])


if __name__ == "__main__":
    unittest.main()
