"""The stdlib WebSocket client against the real `ws` server (node_modules/ws)."""
import base64
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
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

    def test_pings_count_as_traffic_on_a_quiet_link(self):
        ws = self.connect()
        ws.sock.settimeout(None)
        ws.recv_timeout = 0.05  # as the agent reads: a timeout at a time, then it checks the link
        before = ws.last_received
        ws.send_text("pings 5 100")
        answered = []
        for _ in range(200):  # bounded: about 10 s
            try:
                answered.append(ws.recv())
            except socket.timeout:
                if ws.last_received - before >= 0.3:
                    break
        self.assertEqual(answered, [])  # no message: only pings came
        self.assertGreaterEqual(ws.last_received - before, 0.3)

    def test_a_receive_timeout_keeps_a_partial_frame_with_a_blocking_socket(self):
        ws = self.connect()
        ws.sock.settimeout(None)
        ws.recv_timeout = 0.05
        with self.assertRaises(socket.timeout):
            ws.recv()
        ws.recv_timeout = 5
        ws.send_text("echo")
        self.assertEqual(ws.recv(), (agent.OP_TEXT, b"ready"))

    def test_refuses_a_server_that_does_not_upgrade(self):
        with self.assertRaises(ConnectionError):
            agent.WebSocket.connect("ws://127.0.0.1:%d/" % self.plain_http_port(), timeout=5)

    def plain_http_port(self):
        def answer(conn):
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return serve_one_connection(self, answer)


def serve_one_connection(test, handle):
    """A loopback port whose first connection is given to handle (in a thread), then closed."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    test.addCleanup(listener.close)

    def serve():
        conn, _ = listener.accept()
        try:
            handle(conn)
        except (OSError, IndexError):
            pass  # the client went away (a refused certificate)
        finally:
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


class PinnedCertificateTest(unittest.TestCase):
    """wss:// to a server with a self-signed certificate (made by the openssl CLI), accepted only
    when it is the pinned one (tls_cert_sha256)."""

    @classmethod
    def setUpClass(cls):
        import ssl
        cls.dir = tempfile.mkdtemp()
        cert, key = os.path.join(cls.dir, "cert.pem"), os.path.join(cls.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                        "-subj", "/CN=dvic-test-server", "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(cert) as f:
            cls.digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()
        cls.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cls.context.load_cert_chain(cert, key)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def serve_once(self):
        """A TLS WebSocket server for one connection: upgrades, sends "hello", closes."""
        def serve(conn):
            with self.context.wrap_socket(conn, server_side=True) as tls:
                answer(tls)

        def answer(tls):
            request = tls.recv(4096).decode()
            key = [l.split(":", 1)[1].strip() for l in request.split("\r\n") if l.lower().startswith("sec-websocket-key")][0]
            accept = base64.b64encode(hashlib.sha1((key + agent.WS_GUID).encode()).digest()).decode()
            tls.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: %s\r\n\r\n" % accept).encode() + b"\x81\x05hello")
            tls.recv(1)
        return "wss://127.0.0.1:%d/api/v1/agent" % serve_one_connection(self, serve)

    def test_accepts_the_pinned_certificate(self):
        ws = agent.WebSocket.connect(self.serve_once(), timeout=5, pin_sha256=self.digest)
        self.addCleanup(ws.shutdown)
        self.assertEqual(ws.recv(), (agent.OP_TEXT, b"hello"))

    def test_refuses_another_certificate_and_says_which_it_got(self):
        with self.assertRaises(ConnectionError) as caught:
            agent.WebSocket.connect(self.serve_once(), timeout=5, pin_sha256="0" * 64)
        self.assertIn("sha256 %s" % self.digest, str(caught.exception))
        self.assertIn("not the pinned one", str(caught.exception))

    def test_without_a_pin_a_self_signed_certificate_is_refused(self):
        with self.assertRaises(OSError):
            agent.WebSocket.connect(self.serve_once(), timeout=5)


if __name__ == "__main__":
    unittest.main()
