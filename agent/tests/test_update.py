"""Self-update on the node: version order, the guard's rollback, --selftest, --guard (real files in a temp root)."""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import unittest

from tests.support import AGENT_PATH, PYTHON, CapturingAgent, run_agent, temp_dir
from tests.test_cli import NODE_ID, PEM
import dvic_agent


def refusal(candidate, running, force):
    return dvic_agent.refuse_version(candidate, running, force) or ""


def record(path):
    value = dvic_agent.read_json_file(path)
    assert value is not None, path
    return value


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class VersionOrder(unittest.TestCase):
    def test_orders_numeric_parts_as_numbers(self):
        self.assertGreater(dvic_agent.version_key("0.10.0"), dvic_agent.version_key("0.9.1"))
        self.assertGreater(dvic_agent.version_key("1.0.0"), dvic_agent.version_key("0.99"))

    def test_refuses_a_downgrade_unless_forced_and_the_running_version(self):
        self.assertIn("downgrade needs force", refusal("0.0.9", "0.1.0", False))
        self.assertIsNone(dvic_agent.refuse_version("0.0.9", "0.1.0", True))
        self.assertIn("already running", refusal("0.1.0", "0.1.0", True))
        self.assertIsNone(dvic_agent.refuse_version("0.2.0", "0.1.0", False))

    def test_refuses_version_names_that_leave_the_versions_dir(self):
        for bad in ("..", "../etc", "a/b", ".hidden", "", "x" * 65):
            self.assertIn("not a version name", refusal(bad, "0.1.0", True), bad)


class Guard(unittest.TestCase):
    def setUp(self):
        self.root = temp_dir(self)
        self.paths = dvic_agent.UpdatePaths(self.root)
        self.old = self.paths.version_file("0.1.0")
        self.new = self.paths.version_file("0.2.0")
        write(self.old, "# old\n")
        write(self.new, "# new\n")
        dvic_agent.flip_link(self.paths.entry, self.new)

    def trial(self, state, previous=None):
        write(self.paths.trial, json.dumps({"update_id": "u1", "version": "0.2.0", "previous": previous or self.old,
                                            "state": state, "hello_s": 60, "stable_s": 30}))

    def test_does_nothing_without_a_trial(self):
        self.assertEqual(dvic_agent.run_guard(self.root), 0)
        self.assertEqual(os.path.realpath(self.paths.entry), os.path.realpath(self.new))
        self.assertFalse(os.path.exists(self.paths.outcome))

    def test_lets_the_new_version_start_once_then_rolls_back_if_it_starts_again_unproven(self):
        self.trial("switched")
        dvic_agent.run_guard(self.root)
        self.assertEqual(os.path.realpath(self.paths.entry), os.path.realpath(self.new))
        self.assertEqual(record(self.paths.trial)["state"], "started")
        dvic_agent.run_guard(self.root)  # it crashed or its watchdog gave up: the unit starts again
        self.assertEqual(os.path.realpath(self.paths.entry), os.path.realpath(self.old))
        self.assertFalse(os.path.exists(self.paths.trial))
        outcome = record(self.paths.outcome)
        self.assertEqual((outcome["update_id"], outcome["version"], outcome["step"]), ("u1", "0.2.0", "rolled_back"))
        self.assertIn("back on 0.1.0", outcome["message"])

    def test_never_flips_to_a_previous_path_outside_the_versions_dir(self):
        outside = os.path.join(temp_dir(self), "evil.py")
        write(outside, "# evil\n")
        self.trial("started", previous=outside)
        dvic_agent.run_guard(self.root)
        self.assertEqual(os.path.realpath(self.paths.entry), os.path.realpath(self.new))
        self.assertIn("not rolled back", record(self.paths.outcome)["message"])

    def test_ignores_a_trial_record_that_is_not_a_regular_file(self):
        os.mkfifo(self.paths.trial)
        self.assertEqual(dvic_agent.run_guard(self.root), 0)
        self.assertEqual(os.path.realpath(self.paths.entry), os.path.realpath(self.new))

    def test_runs_from_the_command_line(self):
        self.trial("started")
        result = run_agent("--guard", self.root)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("back on 0.1.0", result.stderr)
        self.assertEqual(os.path.realpath(self.paths.entry), os.path.realpath(self.old))


class Selftest(unittest.TestCase):
    def test_passes_with_a_good_config_and_fails_with_a_clear_message_without(self):
        tmp = temp_dir(self)
        config = os.path.join(tmp, "agent.json")
        write(config, json.dumps({"server_url": "ws://127.0.0.1:1/api/v1/agent", "node_id": NODE_ID, "private_key": PEM,
                                  "state_dir": os.path.join(tmp, "state"), "update_root": os.path.join(tmp, "opt")}))
        os.chmod(config, 0o600)
        ok = run_agent("--selftest", "--config", config)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("selftest ok", ok.stdout)
        bad = run_agent("--selftest", "--config", os.path.join(tmp, "missing.json"))
        self.assertEqual(bad.returncode, 2)
        self.assertIn("no such file", bad.stderr)


def openssl(*args, data=None):
    return subprocess.run(["openssl"] + list(args), input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True).stdout


def make_update_key(directory, name):
    """An ECDSA P-256 key pair as the server makes it: (private PEM path, public PEM text)."""
    private = os.path.join(directory, name + ".pem")
    with open(private, "wb") as f:
        f.write(openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"))
    return private, openssl("pkey", "-in", private, "-pubout").decode()


class ServingAgent(CapturingAgent):
    """A capturing agent whose "server" answers update.fetch with pieces of a file, through the
    agent's own dispatch (so every answer is checked against its schema)."""

    def __init__(self, config, served, mangle=None):
        CapturingAgent.__init__(self, config)
        self.served = served
        self.mangle = mangle or (lambda piece: piece)
        self.stopped = False

    def send_frame(self, frame):
        sent = CapturingAgent.send_frame(self, frame)
        message = json.loads(frame.decode("utf-8"))
        if sent and message["type"] == "update.fetch":
            d = message["data"]
            piece = self.mangle(self.served[d["offset"]:d["offset"] + d["length"]])
            self._on_text(json.dumps({"type": "update.chunk", "data": {"update_id": d["update_id"], "version": d["version"], "offset": d["offset"],
                                                                        "data": base64.b64encode(piece).decode()}}).encode())
        return sent

    def stop(self):
        self.stopped = True


class SelfUpdateOnTheNode(unittest.TestCase):
    """The whole update.request path in the agent, with real files, openssl and a real --selftest."""

    def setUp(self):
        self.tmp = temp_dir(self)
        self.root = os.path.join(self.tmp, "opt")
        os.makedirs(self.root)
        shutil.copy(AGENT_PATH, os.path.join(self.root, "dvic_agent.py"))
        with open(AGENT_PATH) as f:
            self.new = f.read().replace('AGENT_VERSION = "%s"' % dvic_agent.AGENT_VERSION, 'AGENT_VERSION = "99.0.0"').encode()
        self.key, self.public = make_update_key(self.tmp, "server")

    def agent(self, served=None, mangle=None, update_key=None):
        values = {"server_url": "ws://127.0.0.1:9/", "node_id": NODE_ID, "private_key": PEM, "state_dir": os.path.join(self.tmp, "state"),
                  "log_dir": os.path.join(self.tmp, "logs"), "system_logs": "off", "container_logs": False, "update_root": self.root,
                  "update_hello_timeout_s": 5, "update_stable_s": 2}
        for d in ("state", "logs"):
            os.makedirs(os.path.join(self.tmp, d), exist_ok=True)
        path = os.path.join(self.tmp, "agent.json")
        write(path, json.dumps(values))
        os.chmod(path, 0o600)
        agent = ServingAgent(dvic_agent.load_config(path), self.new if served is None else served, mangle)
        agent.update_key = self.public if update_key is None else update_key
        return agent

    def sign(self, content, key=None):
        signed, sig_path = os.path.join(self.tmp, "signed"), os.path.join(self.tmp, "sig")
        with open(signed, "wb") as f:
            f.write(content)
        openssl("dgst", "-sha256", "-sign", key or self.key, "-out", sig_path, signed)
        with open(sig_path, "rb") as f:
            return base64.b64encode(f.read()).decode()

    def request(self, agent, content=None, key=None, **extra):
        content = self.new if content is None else content
        data = dict({"update_id": "u1", "version": "99.0.0", "sha256": hashlib.sha256(content).hexdigest(), "size": len(content),
                     "signature": self.sign(content, key)}, **extra)
        feature = agent.feature(dvic_agent.SelfUpdate)
        feature.busy.acquire()
        feature._update(data)
        return [(m["data"]["step"], m["data"].get("message", "")) for m in agent.of_type("update.status")]

    def entry(self):
        return os.path.realpath(os.path.join(self.root, "dvic_agent.py"))

    def test_stages_verifies_selftests_switches_and_exits_with_the_restart_code(self):
        agent = self.agent()
        steps = self.request(agent)
        self.assertEqual([s for s, _ in steps if s != "download"], ["verify", "selftest", "switch", "restart"])
        self.assertEqual(self.entry(), os.path.realpath(os.path.join(self.root, "versions/99.0.0/dvic_agent.py")))
        with open(self.entry(), "rb") as f:
            self.assertEqual(f.read(), self.new)
        trial = record(os.path.join(self.root, "trial.json"))
        self.assertEqual((trial["version"], trial["state"], trial["hello_s"], trial["stable_s"]), ("99.0.0", "switched", 5, 2))
        self.assertEqual(os.path.realpath(trial["previous"]), os.path.realpath(os.path.join(self.root, "versions", dvic_agent.AGENT_VERSION, "dvic_agent.py")))
        self.assertTrue(os.path.isfile(os.path.join(self.root, "guard.py")))
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, "versions"))), sorted([dvic_agent.AGENT_VERSION, "99.0.0"]))
        self.assertEqual((agent.exit_code, agent.stopped), (dvic_agent.UPDATE_EXIT_CODE, True))
        with open(os.path.join(self.tmp, "state", "update-key.pem")) as f:
            self.assertEqual(f.read(), self.public)  # pinned on first sight

    def assert_refused(self, steps, why):
        self.assertEqual(steps[-1][0], "failed")
        self.assertIn(why, steps[-1][1])
        self.assertEqual(self.entry(), os.path.realpath(os.path.join(self.root, "dvic_agent.py")))  # still the plain installed file
        self.assertFalse(os.path.exists(os.path.join(self.root, "versions/99.0.0")))
        self.assertEqual([n for n in os.listdir(os.path.join(self.root, "versions")) if n.startswith(".staging")], [])
        self.assertFalse(os.path.exists(os.path.join(self.root, "trial.json")))

    def test_refuses_bytes_that_do_not_match_the_sha256(self):
        agent = self.agent(mangle=lambda piece: piece.replace(b"import", b"imp0rt", 1))
        self.assert_refused(self.request(agent), "sha256 mismatch")

    def test_refuses_a_file_signed_by_another_key(self):
        other, _ = make_update_key(self.tmp, "attacker")
        self.assert_refused(self.request(self.agent(), key=other), "bad signature")

    def test_refuses_a_replayed_signature_of_another_file(self):
        changed = self.new + b"\n# changed\n"
        seen_on_the_wire = self.sign(self.new)  # a valid update's signature, sent again with another file
        self.assert_refused(self.request(self.agent(served=changed), content=changed, signature=seen_on_the_wire), "bad signature")

    def test_refuses_when_the_server_key_changed_from_the_pinned_one(self):
        write(os.path.join(self.tmp, "state", "update-key.pem"), self.public)  # pinned by an earlier update
        other, other_public = make_update_key(self.tmp, "new-server")
        self.assert_refused(self.request(self.agent(update_key=other_public), key=other), "differs from the one pinned")

    def test_refuses_an_older_signed_file_sent_as_a_newer_version(self):
        old = self.new.replace(b'AGENT_VERSION = "99.0.0"', b'AGENT_VERSION = "98.0.0"')  # a real, validly signed 98.0.0
        self.assertNotEqual(old, self.new)
        steps = self.request(self.agent(served=old), content=old)  # replayed with its own signature, named 99.0.0
        self.assert_refused(steps, "the file says it is version 98.0.0, not 99.0.0")

    def test_refuses_a_file_that_names_no_version(self):
        nameless = self.new.replace(b'AGENT_VERSION = "99.0.0"', b'AGENT_VERSION = VERSION')
        self.assert_refused(self.request(self.agent(served=nameless), content=nameless), "the file says it is version (none)")

    def test_pins_the_update_key_at_the_first_welcome_not_at_the_first_update(self):
        pinned = os.path.join(self.tmp, "state", "update-key.pem")
        self.agent(update_key="not a key").feature(dvic_agent.SelfUpdate).on_connected()
        self.assertFalse(os.path.exists(pinned), "only a public key is pinned")
        self.agent().feature(dvic_agent.SelfUpdate).on_connected()  # the welcome's update_key, no update yet
        with open(pinned) as f:
            self.assertEqual(f.read(), self.public)
        other, other_public = make_update_key(self.tmp, "later-server")
        later = self.agent(update_key=other_public)
        later.feature(dvic_agent.SelfUpdate).on_connected()  # a later welcome does not replace the pin
        with open(pinned) as f:
            self.assertEqual(f.read(), self.public)
        self.assert_refused(self.request(later, key=other), "differs from the one pinned")

    def test_refuses_more_bytes_than_asked_for(self):
        self.assert_refused(self.request(self.agent(mangle=lambda piece: piece + b"extra")), "asked for")

    def test_refuses_a_file_that_fails_its_selftest(self):
        broken = self.new.replace(b"def selftest(args", b"def selftest_gone(args")
        self.assert_refused(self.request(self.agent(served=broken), content=broken), "failed its --selftest")

    def test_refuses_while_a_version_is_on_trial(self):
        write(os.path.join(self.root, "trial.json"), json.dumps({"version": "98.0.0", "state": "started"}))
        steps = self.request(self.agent())
        self.assertEqual(steps, [("failed", "a version is still on trial here")])


class TrialDeadlineUnderSystemd(unittest.TestCase):
    """The guard arms a systemd-run timer for a version on trial; the timer restarts the unit when
    that version is still unproven. systemd-run and systemctl are stand-ins here that record their
    arguments (e2e/agent-update-systemd.test.ts runs the real ones)."""

    def setUp(self):
        self.root = temp_dir(self)
        self.bin = temp_dir(self)
        self.calls = os.path.join(self.bin, "calls")
        for tool in ("systemd-run", "systemctl"):
            write(os.path.join(self.bin, tool), '#!/bin/sh\necho "%s $*" >> %s\n' % (tool, self.calls))
            os.chmod(os.path.join(self.bin, tool), 0o755)
        write(os.path.join(self.root, "trial.json"), json.dumps({"update_id": "u-1", "version": "0.2.0", "previous": "x", "state": "switched",
                                                                 "hello_s": 60, "stable_s": 30}))

    def run_agent_env(self, *args, systemd=True):
        env = dict(os.environ, PATH=self.bin + os.pathsep + os.environ["PATH"])
        if systemd:
            env["INVOCATION_ID"] = "0123456789abcdef"
        else:
            env.pop("INVOCATION_ID", None)
        return subprocess.run([PYTHON, AGENT_PATH] + list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)

    def recorded(self):
        if not os.path.exists(self.calls):
            return []
        with open(self.calls) as f:
            return f.read().splitlines()

    def test_arms_a_timer_well_after_the_watchdog_when_the_trial_starts(self):
        self.assertEqual(self.run_agent_env("--guard", self.root, "dvic-agent.service").returncode, 0)
        self.assertEqual(self.recorded(), ["systemd-run --quiet --collect --unit dvic-agent-trial-u-1 --on-active=120s --timer-property=AccuracySec=1s %s %s --trial-deadline %s u-1 dvic-agent.service"
                                           % (PYTHON, AGENT_PATH, self.root)])

    def test_arms_nothing_outside_systemd_or_without_a_unit_name(self):
        self.run_agent_env("--guard", self.root, "dvic-agent.service", systemd=False)
        write(os.path.join(self.root, "trial.json"), json.dumps({"update_id": "u-1", "version": "0.2.0", "state": "switched"}))
        self.run_agent_env("--guard", self.root, "evil; rm -rf /")
        self.assertEqual(self.recorded(), [])

    def test_restarts_the_unit_only_while_that_update_is_still_unproven(self):
        write(os.path.join(self.root, "trial.json"), json.dumps({"update_id": "u-1", "version": "0.2.0", "state": "started"}))
        self.run_agent_env("--trial-deadline", self.root, "u-2", "dvic-agent.service")  # another update's timer
        self.assertEqual(self.recorded(), [])
        result = self.run_agent_env("--trial-deadline", self.root, "u-1", "dvic-agent.service")
        self.assertIn("still unproven past its deadline", result.stderr)
        self.assertEqual(self.recorded(), ["systemctl restart --no-block dvic-agent.service"])
        os.unlink(os.path.join(self.root, "trial.json"))  # proved healthy meanwhile
        self.run_agent_env("--trial-deadline", self.root, "u-1", "dvic-agent.service")
        self.assertEqual(len(self.recorded()), 1)


if __name__ == "__main__":
    unittest.main()
