"""Several server URLs: the config keys, and failover between real replicas (ws servers on
loopback that do the real handshake) with the same jittered backoff as a single server."""
import json
import os
import signal
import socket
import subprocess
import threading
import unittest
import urllib.request

from tests.support import AGENT_PATH, PYTHON, REPO_DIR, TESTS_DIR, dvic_agent as agent, temp_dir, wait_until
from tests.test_cli import NODE_ID, PEM


class Lines(object):
    """The lines a process prints on one stream, read by a thread of their own."""

    def __init__(self, stream):
        self.lines = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def count(self, text):
        return sum(1 for line in list(self.lines) if text in line)


class Replica(object):
    """One replica_test_server.mjs process: a server that takes the node's signed hello."""

    def __init__(self, test, key_path):
        self.process = subprocess.Popen(["node", os.path.join(TESTS_DIR, "replica_test_server.mjs"), key_path], cwd=REPO_DIR,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
        assert self.process.stdout is not None
        self.url = "ws://127.0.0.1:%s/api/v1/agent" % self.process.stdout.readline().strip()
        self.out = Lines(self.process.stdout)
        test.addCleanup(self.kill)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()

    def hellos(self):
        return self.out.count("hello " + NODE_ID)


def refusing_url(test):
    """A port bound and never listened on: every connection to it is refused, and no other
    process can take it while the test runs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    test.addCleanup(sock.close)
    return "ws://127.0.0.1:%d/api/v1/agent" % sock.getsockname()[1]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def relayed_by(port):
    """Who answers a keepalive sent to the agent's relay (None while the relay is not up yet)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/ping/dvk_failover" % port, timeout=5) as answer:
            return answer.read().decode()
    except OSError:
        return None


def write_config(test, root, **servers):
    key_path = os.path.join(root, "node.key")
    with open(key_path, "w") as f:
        f.write(PEM)
    os.chmod(key_path, 0o600)
    path = os.path.join(root, "agent.json")
    with open(path, "w") as f:
        json.dump(dict(servers, node_id=NODE_ID, key_path=key_path, state_dir=os.path.join(root, "state"), log_dir=root,
                       system_logs="off", container_logs=False), f)
    os.chmod(path, 0o600)
    return path, key_path


class ServerListConfigTest(unittest.TestCase):
    def load(self, **servers):
        root = temp_dir(self)
        return agent.load_config(write_config(self, root, **servers)[0])

    def test_server_url_alone_is_a_list_of_one(self):
        config = self.load(server_url="ws://a:1/api/v1/agent")
        self.assertEqual(config.server_urls, ["ws://a:1/api/v1/agent"])
        self.assertEqual(config.server_url, "ws://a:1/api/v1/agent")

    def test_server_url_comes_first_then_server_urls_each_once(self):
        config = self.load(server_url="ws://a:1/x", server_urls=["wss://b:2/x", "ws://a:1/x", "wss://c/x"])
        self.assertEqual(config.server_urls, ["ws://a:1/x", "wss://b:2/x", "wss://c/x"])
        self.assertEqual(self.load(server_urls=["wss://b:2/x"]).server_url, "wss://b:2/x")

    def test_bad_server_lists_are_refused_with_the_key_named(self):
        cases = [
            ({}, 'missing "server_url" (or "server_urls")'),
            ({"server_urls": []}, '"server_urls" must be a list of 1 to 16 URLs'),
            ({"server_urls": "ws://a/x"}, '"server_urls" must be a list'),
            ({"server_urls": ["ws://a/x", 7]}, '"server_urls" must be a list'),
            ({"server_urls": ["ws://a:%d/x" % i for i in range(17)]}, "1 to 16 URLs"),
            ({"server_urls": ["ws://a/x", "http://b/x"]}, '"server_urls" must start with ws:// or wss:// (http://b/x)'),
            ({"server_urls": ["ws://a/x", "ws:// b; rm -rf /"]}, '"server_urls" must start with ws://'),
            ({"server_url": 5, "server_urls": ["ws://a/x"]}, '"server_url" must be a string'),
            ({"server_url": "", "server_urls": ["ws://a/x"]}, '"server_url" must start with ws://'),
        ]
        for servers, fragment in cases:
            with self.subTest(servers=servers):
                with self.assertRaises(agent.ConfigError) as caught:
                    self.load(**servers)
                self.assertIn(fragment, str(caught.exception))

    def test_attempts_go_round_the_list(self):
        self.assertEqual([agent.next_server(i, 3) for i in range(3)], [1, 2, 0])
        self.assertEqual(agent.next_server(0, 1), 0)


class FailoverTest(unittest.TestCase):
    def test_the_agent_fails_over_to_the_next_replica_and_skips_one_that_refuses(self):
        root = temp_dir(self)
        refused = refusing_url(self)
        key_path = write_config(self, root, server_url="ws://placeholder/")[1]
        a, b = Replica(self, key_path), Replica(self, key_path)
        relay = free_port()
        config, _ = write_config(self, root, server_url=refused, server_urls=[a.url, b.url], keepalive_port=relay)
        process = subprocess.Popen([PYTHON, AGENT_PATH, "--config", config], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, universal_newlines=True)
        self.addCleanup(self.end, process)
        log = Lines(process.stderr)

        # The first server refuses: the next one of the list is tried after the backoff.
        wait_until(lambda: a.hellos() == 1, 30, "the agent on replica A")
        self.assertEqual(log.count("cannot reach %s" % refused), 1, log.lines)
        wait_until(lambda: log.count("connected to %s" % a.url) == 1, 10, "the agent's own log of it")
        # Demos' keepalives go through the relay to the server in use.
        self.assertEqual(wait_until(lambda: relayed_by(relay), 10, "the keepalive relay"), "replica %s" % a.url.split(":")[2].split("/")[0])

        # Replica A dies: the agent is on replica B within its backoff cap, not back on A.
        a.kill()
        wait_until(lambda: b.hellos() == 1, agent.BACKOFF_CAP_S + 10, "the agent on replica B")
        wait_until(lambda: log.count("connected to %s" % b.url) == 1, 10, "the agent's own log of it")
        self.assertEqual(log.count("reconnecting to %s" % b.url), 1, log.lines)
        self.assertEqual(relayed_by(relay), "replica %s" % b.url.split(":")[2].split("/")[0])

        process.send_signal(signal.SIGTERM)
        process.wait(20)
        log.thread.join(10)
        self.assertEqual(process.returncode, 0, log.lines)
        self.assertEqual((a.hellos(), b.hellos()), (1, 1))

    @staticmethod
    def end(process):
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stderr:
            process.stderr.close()


if __name__ == "__main__":
    unittest.main()
