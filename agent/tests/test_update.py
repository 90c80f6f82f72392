"""Self-update on the node: version order, the guard's rollback, --selftest, --guard (real files in a temp root)."""
import json
import os
import unittest

from tests.support import run_agent, temp_dir
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


if __name__ == "__main__":
    unittest.main()
