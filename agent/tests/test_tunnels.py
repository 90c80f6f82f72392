"""Tunnels: a real TCP listener on loopback, reached through the agent's own dispatch."""
import json
import socket
import struct
import threading
import unittest

from tests.support import dvic_agent, make_agent, wait_until

OP_TUNNEL_DATA = dvic_agent.OP_TUNNEL_DATA
OP_CREDIT = dvic_agent.OP_CREDIT
WINDOW = dvic_agent.TERMINAL_WINDOW_BYTES


class EchoServer(object):
    """Echoes what it receives, upper-cased; `flood` bytes are sent first when asked."""

    def __init__(self, test, flood=0):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.flood = flood
        self.connections = []
        self.ended = threading.Event()  # the tunnel's side closed the connection
        test.addCleanup(self.close)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.connections.append(conn)
        if self.flood:
            try:
                conn.sendall(b"x" * self.flood)
            except OSError:
                return
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                self.ended.set()
                conn.close()
                return
            conn.sendall(data.upper())

    def close(self):
        self.listener.close()
        for conn in self.connections:
            conn.close()


class BinaryLog(list):
    """The binary frames the agent sent, decoded."""

    def send(self, frame):
        self.append(dvic_agent.decode_binary_frame(frame))
        return True


def tunnel_agent(test):
    agent = make_agent(test)
    sent = BinaryLog()
    agent.send_binary = sent.send
    test.addCleanup(agent.feature(dvic_agent.Tunnels).stop)
    return agent, sent


def text(agent, message):
    agent._on_text(json.dumps(message).encode())


def received(sent, channel):
    return b"".join(p for (op, ch, p) in list(sent) if op == OP_TUNNEL_DATA and ch == channel)


class TunnelTest(unittest.TestCase):
    def test_bytes_flow_both_ways_and_the_server_is_granted_credit(self):
        agent, sent = tunnel_agent(self)
        echo = EchoServer(self)
        text(agent, {"type": "tunnel.open", "data": {"channel": 7, "host": "127.0.0.1", "port": echo.port}})
        wait_until(lambda: agent.of_type("tunnel.opened"), what="tunnel.opened")
        self.assertEqual(agent.of_type("tunnel.opened")[0]["data"], {"channel": 7})
        agent._on_binary(dvic_agent.encode_binary_frame(OP_TUNNEL_DATA, 7, b"hello"))
        wait_until(lambda: received(sent, 7) == b"HELLO", what="the echo")
        credits = [struct.unpack(">I", p)[0] for (op, ch, p) in sent if op == OP_CREDIT and ch == 7]
        self.assertEqual(credits, [5])

    def test_the_target_closing_ends_the_tunnel_with_a_reason(self):
        agent, sent = tunnel_agent(self)
        echo = EchoServer(self)
        text(agent, {"type": "tunnel.open", "data": {"channel": 3, "host": "127.0.0.1", "port": echo.port}})
        wait_until(lambda: echo.connections, what="the connection")
        echo.connections[0].shutdown(socket.SHUT_RDWR)
        closes = wait_until(lambda: agent.of_type("tunnel.close"), what="tunnel.close")
        self.assertEqual(closes[0]["data"], {"channel": 3, "reason": "the target closed the connection"})
        self.assertEqual(agent.feature(dvic_agent.Tunnels).tunnels, {})

    def test_a_closed_port_is_refused_with_the_address_in_the_reason(self):
        agent, sent = tunnel_agent(self)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there now
        text(agent, {"type": "tunnel.open", "data": {"channel": 4, "host": "127.0.0.1", "port": port}})
        closes = wait_until(lambda: agent.of_type("tunnel.close"), what="tunnel.close")
        reason = closes[0]["data"]["reason"]
        self.assertIn("cannot connect to 127.0.0.1:%d from this node" % port, reason)
        self.assertIn("refused", reason.lower())
        self.assertEqual(agent.of_type("tunnel.opened"), [])

    def test_an_unresolvable_host_is_refused_without_harm(self):
        agent, sent = tunnel_agent(self)
        text(agent, {"type": "tunnel.open", "data": {"channel": 5, "host": "no such host;rm -rf /", "port": 22}})
        closes = wait_until(lambda: agent.of_type("tunnel.close"), what="tunnel.close")
        self.assertIn("cannot connect to no such host;rm -rf /:22", closes[0]["data"]["reason"])

    def test_output_stops_at_the_window_until_the_server_grants_credit(self):
        agent, sent = tunnel_agent(self)
        echo = EchoServer(self, flood=WINDOW * 3)
        text(agent, {"type": "tunnel.open", "data": {"channel": 9, "host": "127.0.0.1", "port": echo.port}})
        wait_until(lambda: len(received(sent, 9)) == WINDOW, what="a full window")
        self.assertEqual(len(received(sent, 9)), WINDOW)
        agent._on_binary(dvic_agent.encode_binary_frame(OP_CREDIT, 9, struct.pack(">I", WINDOW)))
        wait_until(lambda: len(received(sent, 9)) == 2 * WINDOW, what="the second window")

    def test_the_server_closing_closes_the_socket(self):
        agent, sent = tunnel_agent(self)
        echo = EchoServer(self)
        text(agent, {"type": "tunnel.open", "data": {"channel": 11, "host": "127.0.0.1", "port": echo.port}})
        wait_until(lambda: agent.of_type("tunnel.opened"), what="tunnel.opened")
        text(agent, {"type": "tunnel.close", "data": {"channel": 11}})
        self.assertTrue(echo.ended.wait(10), "the target saw its connection end")
        self.assertEqual(agent.feature(dvic_agent.Tunnels).tunnels, {})
        self.assertEqual(agent.of_type("tunnel.close"), [])  # the server asked: no echo of its close

    def test_tunnels_are_bounded(self):
        agent, sent = tunnel_agent(self)
        feature = agent.feature(dvic_agent.Tunnels)
        for channel in range(1, dvic_agent.MAX_TUNNELS + 1):
            feature.tunnels[channel] = dvic_agent.Tunnel(channel, None)
        text(agent, {"type": "tunnel.open", "data": {"channel": 99, "port": 22}})
        self.assertEqual(agent.of_type("tunnel.close")[0]["data"]["reason"], "too many tunnels open (%d)" % dvic_agent.MAX_TUNNELS)
        feature.tunnels.clear()

    def test_terminal_credit_still_reaches_terminals(self):
        agent, sent = tunnel_agent(self)
        self.assertIn("tunnel", agent.capabilities)
        terminals = agent.feature(dvic_agent.Terminals)
        session = dvic_agent.TerminalSession(5, 0, -1)
        session.credit = 0
        terminals.sessions[5] = session
        agent._on_binary(dvic_agent.encode_binary_frame(OP_CREDIT, 5, struct.pack(">I", 100)))
        self.assertEqual(session.credit, 100)
        terminals.sessions.clear()


if __name__ == "__main__":
    unittest.main()
