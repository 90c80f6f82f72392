"""The agent against the shared protocol vectors (the same files the server's tests use)."""
import base64
import glob
import json
import os
import unittest

from tests.support import VECTORS, dvic_agent as agent


def load(path):
    with open(path) as f:
        return json.load(f)


class MessageVectorsTest(unittest.TestCase):
    def test_every_message_type_has_vectors(self):
        files = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(VECTORS, "messages", "*.json")))
        self.assertEqual(files, sorted(agent.MESSAGE_SCHEMAS))

    def test_agent_verdicts_match_every_vector(self):
        for path in sorted(glob.glob(os.path.join(VECTORS, "messages", "*.json"))) + [os.path.join(VECTORS, "envelope.json")]:
            for case in load(path)["tests"]:
                with self.subTest(file=os.path.basename(path), case=case["description"]):
                    problem = agent.validate_message(case["data"])
                    self.assertEqual(problem is None, case["valid"], problem)

    def test_a_final_dollar_means_the_end_as_in_javascript(self):
        state = {"type": "demo.state", "data": {"full": False, "demos": [{"token": "k3JxV9mQ2pL8sT4wZ6yB1c", "demo": "d", "pid": 1, "alive": True}]}}
        self.assertIsNone(agent.validate_message(state, "agent-to-server"))
        state["data"]["demos"][0]["token"] += "\n"
        self.assertIn("does not match", agent.validate_message(state, "agent-to-server") or "")

    def test_refuses_a_message_travelling_the_wrong_way(self):
        hello = load(os.path.join(VECTORS, "messages", "hello.json"))["tests"][0]["data"]
        self.assertIsNone(agent.validate_message(hello, "agent-to-server"))
        self.assertIn("unknown message type", agent.validate_message(hello, "server-to-agent") or "")


class LogHeaderVectorsTest(unittest.TestCase):
    """Line 1 of a demo log file: the agent follows the valid headers and skips the file of any other."""

    def test_agent_verdicts_match_every_header_vector(self):
        for case in load(os.path.join(VECTORS, "logs", "header.json"))["tests"]:
            with self.subTest(case=case["description"]):
                parsed, why = agent.parse_log_header(json.dumps(case["data"]).encode())
                self.assertEqual(parsed is not None, case["valid"], why)

    def test_reads_the_headers_every_library_writes(self):
        for case in load(os.path.join(VECTORS, "logs", "format.json"))["headers"]:
            with self.subTest(case=case["description"]):
                self.assertEqual(agent.parse_log_header(case["line"].encode()), (case["input"], ""))


class BinaryFrameVectorsTest(unittest.TestCase):
    def test_decode_and_encode_match_the_vectors(self):
        for case in load(os.path.join(VECTORS, "binary-frames.json"))["tests"]:
            with self.subTest(case=case["description"]):
                decoded = agent.decode_binary_frame(bytes.fromhex(case["hex"]))
                if case["decoded"] is None:
                    self.assertIsNone(decoded)
                    continue
                expected = case["decoded"]
                self.assertEqual(decoded, (expected["opcode"], expected["channel"], bytes.fromhex(expected["payload_hex"])))
                assert decoded is not None
                opcode, channel, payload = decoded
                self.assertEqual(agent.encode_binary_frame(opcode, channel, payload).hex(), case["hex"])


class SignatureVectorTest(unittest.TestCase):
    def setUp(self):
        self.vector = load(os.path.join(VECTORS, "auth-signature.json"))
        der = bytes.fromhex(self.vector["pkcs8_der_prefix_hex"] + self.vector["private_key_seed_hex"])
        self.pem = "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % base64.b64encode(der).decode()

    def test_signs_the_hello_exactly_as_recorded(self):
        message = agent.auth_message(self.vector["nonce"], self.vector["node_id"])
        self.assertEqual(message.decode(), self.vector["signed_message"])
        self.assertEqual(agent.sign(self.pem, message), self.vector["signature_base64"])

    def test_reads_the_key_type_from_the_pem(self):
        self.assertEqual(agent.key_algorithm(self.pem), "ed25519")
        with self.assertRaises(ValueError):
            agent.key_algorithm("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")

    def test_signs_with_an_ecdsa_p256_key_too(self):
        import subprocess
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            key = os.path.join(tmp, "ec.pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key], check=True, stderr=subprocess.DEVNULL)
            subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", key + ".pub"], check=True)
            signature = base64.b64decode(agent.sign(agent.read_text(key), b"hello"))
            with open(os.path.join(tmp, "sig"), "wb") as f:
                f.write(signature)
            with open(os.path.join(tmp, "msg"), "wb") as f:
                f.write(b"hello")
            verify = subprocess.run(["openssl", "dgst", "-sha256", "-verify", key + ".pub", "-signature", os.path.join(tmp, "sig"), os.path.join(tmp, "msg")],
                                    stdout=subprocess.PIPE)
            self.assertEqual(verify.stdout.strip(), b"Verified OK")


if __name__ == "__main__":
    unittest.main()
