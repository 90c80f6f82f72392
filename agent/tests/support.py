"""Shared helpers for the agent tests: paths, the agent module, a capturing agent, bounded waits."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Type, TypeVar

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
AGENT_DIR = os.path.dirname(TESTS_DIR)
REPO_DIR = os.path.dirname(AGENT_DIR)
FIXTURES = os.path.join(TESTS_DIR, "fixtures")
VECTORS = os.path.join(REPO_DIR, "protocol", "vectors")
AGENT_PATH = os.path.join(AGENT_DIR, "dvic_agent.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TOKEN = "k3JxV9mQ2pL8sT4wZ6yB1c"

if AGENT_DIR not in sys.path:
    sys.path.insert(0, AGENT_DIR)

import dvic_agent  # noqa: E402  (after the path is set)


def fixture(name):
    root = os.path.join(FIXTURES, name)
    return os.path.join(root, "proc"), os.path.join(root, "sys"), os.path.join(root, "etc")


def wait_until(check, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def run_agent(*args, timeout=20):
    return subprocess.run([PYTHON, AGENT_PATH] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, universal_newlines=True)


def temp_dir(test):
    """A directory of the test's own, removed after it."""
    path = tempfile.mkdtemp(prefix="dvic-agent-test-")
    test.addCleanup(shutil.rmtree, path, True)
    return path


F = TypeVar("F")


class CapturingAgent(dvic_agent.Agent):
    """The real agent, its connection replaced by a list: every frame it would send is checked
    against its schema and the frame limit (as the server would), then kept."""

    def __init__(self, config):
        dvic_agent.Agent.__init__(self, config)
        self.frames = []
        self.refused = []
        self.connected.set()

    def send_frame(self, frame):
        if not self.connected.is_set():
            return False
        message = json.loads(frame.decode("utf-8"))
        problem = dvic_agent.validate_message(message, "agent-to-server")
        if problem or len(frame) > self.max_frame_bytes:
            self.refused.append(problem or "%d bytes over the limit" % len(frame))
            return False
        self.frames.append(message)
        return True

    def of_type(self, kind):
        return [m for m in self.frames if m["type"] == kind]

    def feature(self, kind: "Type[F]") -> "F":
        return next(f for f in self.features if isinstance(f, kind))

    def answer(self, batch, kind="logs.ack", **data):
        """The server's answer to a batch, through the agent's own dispatch."""
        if kind == "logs.ack":
            data = dict({"stored": len(batch["data"]["records"]), "duplicates": 0}, **data)
        self._on_text(json.dumps({"type": kind, "id": batch["id"], "data": data}).encode())


def make_agent(test, **config):
    """A capturing agent with its own state and log directories (nothing of the machine's /tmp,
    no other mount namespace, no system logs unless asked)."""
    root = temp_dir(test)
    values = {"server_url": "ws://127.0.0.1:9/", "node_id": "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b",
              "state_dir": os.path.join(root, "state"), "log_dir": os.path.join(root, "tmp"), "system_logs": "off",
              "container_logs": False, "log_batch_max_records": 100, "log_batch_max_delay_ms": 0}
    values.update(config)
    for key in ("state_dir", "log_dir"):
        os.makedirs(values[key], exist_ok=True)
    agent = CapturingAgent(dvic_agent.Config(values))
    test.addCleanup(lambda: test.assertEqual(agent.refused, [], "frames the server would refuse"))
    return agent
