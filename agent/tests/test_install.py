"""install.sh's check of a --config file: it must accept every config the agent accepts (the
check is run as install.sh has it, taken from the script, with the python3 the agent runs on)."""
import json
import os
import re
import subprocess
import unittest

from tests.support import AGENT_DIR, temp_dir

INSTALL_SH = os.path.join(AGENT_DIR, "install.sh")


def config_check():
    """The python3 -c program install.sh runs on "$config"."""
    with open(INSTALL_SH) as f:
        found = re.search(r"python3 -c '([^']*server_url[^']*)' \"\$config\"", f.read())
    assert found, "install.sh no longer checks the config with python3 -c"
    return found.group(1)


class InstallConfigCheck(unittest.TestCase):
    def accepts(self, config):
        path = os.path.join(temp_dir(self), "config.json")
        with open(path, "w") as f:
            json.dump(config, f)
        return subprocess.run(["python3", "-c", config_check(), path]).returncode == 0

    def test_accepts_server_url_or_server_urls_and_refuses_neither(self):
        base = {"node_id": "00000000-0000-4000-8000-000000000001", "private_key": "-----BEGIN PRIVATE KEY-----"}
        self.assertTrue(self.accepts(dict(base, server_url="wss://a/agent")))
        self.assertTrue(self.accepts(dict(base, server_urls=["wss://a/agent", "wss://b/agent"])))
        self.assertFalse(self.accepts(base))
        self.assertFalse(self.accepts(dict(base, server_urls=[])))
        self.assertFalse(self.accepts({"server_urls": ["wss://a/agent"], "node_id": base["node_id"]}))
