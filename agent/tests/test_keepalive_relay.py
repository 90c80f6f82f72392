"""The keepalive relay's request checks: only the server's three keepalive URL shapes pass."""
import unittest

from tests.support import dvic_agent as agent


def head(line, *headers):
    return ("\r\n".join((line,) + headers)).encode("ascii")


class KeepaliveRelayTest(unittest.TestCase):
    def test_the_three_url_shapes_pass(self):
        for target in ("/api/v1/devices/dvk_abc-_1/keepalive", "/api/v1/devices/keepalive", "/ping/dvk_abc", "/ping/dvk_abc/start",
                       "/ping/dvk_abc/fail", "/ping/dvk_abc/255", "/ping/dvk_abc/log", "/api/push/dvk_abc?status=up&msg=OK&ping=12"):
            method, parsed, headers = agent.parse_relay_request(head("POST %s HTTP/1.1" % target, "Content-Length: 2", "X-A: b"))
            self.assertEqual((method, parsed, headers["content-length"]), ("POST", target, "2"))

    def test_anything_else_is_refused_with_a_status(self):
        cases = [
            (head("GET /api/v1/nodes HTTP/1.1"), 404), (head("GET /ping/../../etc/passwd HTTP/1.1"), 404),
            (head("GET /ping/a;rm -rf HTTP/1.1"), 400), (head("DELETE /ping/abc HTTP/1.1"), 405),
            (head("GET /ping/abc"), 400), ("GET /ping/é HTTP/1.1".encode("utf-8"), 400),
            (head("GET /api/push/abc?msg=a b HTTP/1.1"), 400), (head("GET /ping/" + "a" * 129 + " HTTP/1.1"), 404),
        ]
        for raw, status in cases:
            with self.assertRaises(agent.RelayRefused) as caught:
                agent.parse_relay_request(raw)
            self.assertEqual(caught.exception.status, status, raw)

    def test_the_server_http_side_comes_from_its_agent_url(self):
        self.assertEqual(agent.http_base("wss://dvic.lab/api/v1/agent"), ("dvic.lab", "dvic.lab", 443, True))
        self.assertEqual(agent.http_base("ws://127.0.0.1:8787/api/v1/agent"), ("127.0.0.1", "127.0.0.1:8787", 8787, False))
        self.assertEqual(agent.http_base("ws://[::1]:9/api/v1/agent"), ("::1", "[::1]:9", 9, False))

    def test_answers_are_plain_http(self):
        self.assertEqual(agent.relay_answer(204, "text/plain", b"ignored"), b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.assertTrue(agent.relay_answer(200, "text/plain", b"OK").endswith(b"Content-Type: text/plain\r\n\r\nOK"))
        self.assertTrue(agent.relay_answer(200, "text/plain", b"OK", head_only=True).endswith(b"\r\n\r\n"))

    def test_off_by_default(self):
        self.assertEqual(agent.Config({}).keepalive_port, 0)


if __name__ == "__main__":
    unittest.main()
