"""The stdlib WebSocket client against the real `ws` server (node_modules/ws)."""
import os
import socket
import subprocess
import unittest

from tests.support import REPO_DIR, TESTS_DIR, dvic_agent as agent


class WebSocketClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = subprocess.Popen(["node", os.path.join(TESTS_DIR, "ws_test_server.mjs")], cwd=REPO_DIR,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
        assert cls.server.stdout is not None
        cls.url = "ws://127.0.0.1:%s/test" % cls.server.stdout.readline().strip()

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()
        cls.server.wait(10)
        for stream in (cls.server.stdin, cls.server.stdout):
            if stream:
                stream.close()

    def connect(self, max_message=agent.MAX_MESSAGE_BYTES):
        ws = agent.WebSocket.connect(self.url, timeout=5, max_message=max_message)
        self.addCleanup(ws.shutdown)
        ws.sock.settimeout(5)
        return ws

    def test_echoes_text_and_binary_in_both_directions(self):
        ws = self.connect()
        ws.send_text("echo")
        self.assertEqual(ws.recv(), (agent.OP_TEXT, b"ready"))
        ws.send_text("héllo ✓")
        self.assertEqual(ws.recv(), (agent.OP_TEXT, "héllo ✓".encode()))
        ws.send_binary(bytes(range(256)))
        self.assertEqual(ws.recv(), (agent.OP_BINARY, bytes(range(256))))

    def test_sends_large_and_fragmented_messages_with_correct_masking(self):
        ws = self.connect()
        ws.send_text("echo")
        ws.recv()
        big = os.urandom(200 * 1024)
        ws.send_binary(big)
        self.assertEqual(ws.recv(), (agent.OP_BINARY, big))
        ws.send_fragmented(agent.OP_TEXT, b"x" * 70000, 1000)
        self.assertEqual(ws.recv(), (agent.OP_TEXT, b"x" * 70000))

    def test_reassembles_fragments_with_a_ping_in_between(self):
        ws = self.connect()
        ws.send_text("fragments 100000")
        opcode, payload = ws.recv()
        self.assertEqual(opcode, agent.OP_TEXT)
        self.assertEqual(payload.decode(), "é" * 50000)
        self.assertEqual(ws.recv(), (agent.OP_TEXT, b"pong:mid"))  # our pong reached the server

    def test_receives_a_2_mib_binary_frame(self):
        ws = self.connect()
        ws.send_text("big 2097152")
        self.assertEqual(ws.recv(), (agent.OP_BINARY, b"\x07" * 2097152))

    def test_refuses_a_message_over_its_limit_with_1009(self):
        ws = self.connect(max_message=1024 * 1024)
        ws.send_text("big 1048577")
        with self.assertRaises(agent.WebSocketClosed) as caught:
            ws.recv()
        self.assertEqual(caught.exception.code, 1009)

    def test_reports_the_servers_close_code_and_reason(self):
        ws = self.connect()
        ws.send_text("close 4003 node revoked")
        with self.assertRaises(agent.WebSocketClosed) as caught:
            ws.recv()
        self.assertEqual((caught.exception.code, caught.exception.reason), (4003, "node revoked"))

    def test_answers_server_pings(self):
        ws = self.connect()
        ws.send_text("ping")
        self.assertEqual(ws.recv(), (agent.OP_TEXT, b"pong:are-you-there"))

    def test_masks_exactly_as_rfc_6455_example(self):
        # RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d
        frame = agent.encode_frame(agent.OP_TEXT, b"Hello", mask=bytes.fromhex("37fa213d"))
        self.assertEqual(frame.hex(), "818537fa213d7f9f4d5158")

    def test_keeps_a_partial_frame_across_a_receive_timeout(self):
        ws = self.connect()
        ws.send_text("echo")
        ws.recv()
        ws.sock.settimeout(0.05)
        with self.assertRaises(socket.timeout):
            ws.recv()
        ws.sock.settimeout(5)
        ws.send_text("still here")
        self.assertEqual(ws.recv(), (agent.OP_TEXT, b"still here"))

    def test_refuses_a_server_that_does_not_upgrade(self):
        with self.assertRaises(ConnectionError):
            agent.WebSocket.connect("ws://127.0.0.1:%d/" % self.plain_http_port(), timeout=5)

    def plain_http_port(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.addCleanup(listener.close)
        import threading

        def answer():
            conn, _ = listener.accept()
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            conn.close()
        threading.Thread(target=answer, daemon=True).start()
        return listener.getsockname()[1]


if __name__ == "__main__":
    unittest.main()
