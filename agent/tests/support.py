"""Shared helpers for the agent tests: paths, the agent module, bounded waits."""
import os
import subprocess
import sys
import time

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
AGENT_DIR = os.path.dirname(TESTS_DIR)
REPO_DIR = os.path.dirname(AGENT_DIR)
FIXTURES = os.path.join(TESTS_DIR, "fixtures")
VECTORS = os.path.join(REPO_DIR, "protocol", "vectors")
AGENT_PATH = os.path.join(AGENT_DIR, "dvic_agent.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

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
