"""Collectors on fixture trees of real machines, and on this machine compared with the kernel."""
import os
import re
import time
import unittest

from tests.support import dvic_agent as agent, fixture


class FakeStatvfs(object):
    """Sizes for fixture mount points (statvfs cannot look inside a fixture tree)."""

    def __init__(self, blocks, bfree, bavail, frsize=4096):
        self.f_blocks, self.f_bfree, self.f_bavail, self.f_frsize = blocks, bfree, bavail, frsize


def fixture_sampler(name, sizes=None):
    sizes = sizes or {}
    proc, sys_root, etc = fixture(name)

    def statvfs(mount):
        if mount not in sizes:
            raise OSError("not mounted here")
        return sizes[mount]
    return agent.Sampler(proc, sys_root, etc, statvfs=statvfs)


class FixtureTreesTest(unittest.TestCase):
    def test_x86_desktop_reports_coretemp_nvme_and_acpi_sensors_with_labels(self):
        state = fixture_sampler("x86-desktop").sample(5)
        temps = dict((t["sensor"], t) for t in state["temperatures"])
        self.assertEqual(temps["hwmon2/temp1"], {"sensor": "hwmon2/temp1", "source": "hwmon", "chip": "coretemp", "label": "Package id 0", "celsius": 45.0})
        self.assertEqual(temps["hwmon1/temp1"]["label"], "Composite")
        self.assertEqual(temps["hwmon1/temp2"]["celsius"], 41.85)
        self.assertEqual(temps["thermal_zone1"], {"sensor": "thermal_zone1", "source": "thermal", "chip": "x86_pkg_temp", "celsius": 45.0})
        self.assertEqual(len([t for t in state["temperatures"] if t["chip"] == "coretemp"]), 7)
        self.assertFalse(any(t["sensor"].startswith("hwmon3") for t in state["temperatures"]))  # fan chip

    def test_raspberry_pi_reports_its_cpu_thermal_zone(self):
        state = fixture_sampler("raspberry-pi").sample(5)
        self.assertEqual(state["temperatures"][0], {"sensor": "thermal_zone0", "source": "thermal", "chip": "cpu-thermal", "celsius": 48.31})
        self.assertEqual(state["host"]["cpu_model"], "Raspberry Pi 4 Model B Rev 1.4")
        self.assertEqual(state["host"]["cpu_count"], 4)
        self.assertEqual(state["host"]["os"], "Debian GNU/Linux 12 (bookworm)")

    def test_jetson_reports_every_readable_zone_and_skips_the_broken_one(self):
        state = fixture_sampler("jetson").sample(5)
        chips = [t["chip"] for t in state["temperatures"]]
        self.assertEqual(chips, ["cpu-thermal", "gpu-thermal", "cv0-thermal", "cv2-thermal", "soc0-thermal", "soc1-thermal", "soc2-thermal", "tj-thermal"])
        self.assertTrue(state["collectors"]["temperatures"]["ok"])

    def test_memory_load_uptime_network_and_processes_are_the_files_numbers(self):
        state = fixture_sampler("x86-desktop").sample(5)
        self.assertEqual(state["memory"], {
            "total_bytes": 32786616 * 1024, "available_bytes": 27654321 * 1024, "used_bytes": (32786616 - 27654321) * 1024,
            "free_bytes": 20111222 * 1024, "buffers_bytes": 345678 * 1024, "cached_bytes": 6543210 * 1024,
            "swap_total_bytes": 2097148 * 1024, "swap_used_bytes": 0})
        self.assertEqual(state["load"], {"load1": 0.52, "load5": 0.58, "load15": 0.59})
        self.assertEqual(state["uptime_s"], 354321.12)
        self.assertEqual([n["iface"] for n in state["network"]], ["docker0", "enp3s0", "wlp2s0"])
        self.assertEqual(state["network"][1]["rx_bytes"], 123456789)
        self.assertEqual(state["processes"], 4)
        self.assertEqual(len(state["cpu"]["per_core_pct"]), 12)
        self.assertEqual(state["host"]["boot_id"], "6c1b0d0e-8c38-4e55-9d0f-1a2b3c4d5e6f")

    def test_filesystems_are_real_mounts_once_per_device_with_statvfs_sizes(self):
        sizes = {"/": FakeStatvfs(1000, 400, 300), "/boot/efi": FakeStatvfs(100, 90, 90), "/tmp": FakeStatvfs(50, 50, 50),
                 "/mnt/data disk": FakeStatvfs(10, 5, 5, 1024)}
        state = fixture_sampler("x86-desktop", sizes).sample(5)
        self.assertEqual([(f["mount"], f["fstype"]) for f in state["filesystems"]],
                         [("/", "ext4"), ("/boot/efi", "vfat"), ("/tmp", "tmpfs"), ("/mnt/data disk", "xfs")])
        self.assertEqual(state["filesystems"][0], {"mount": "/", "device": "/dev/nvme0n1p2", "fstype": "ext4",
                                                   "size_bytes": 4096000, "used_bytes": 600 * 4096, "avail_bytes": 300 * 4096})

    def test_a_failing_collector_is_reported_and_the_message_stays_valid(self):
        sampler = fixture_sampler("raspberry-pi")
        sampler.proc_root = "/nonexistent"
        state = sampler.sample(5)
        self.assertFalse(state["collectors"]["memory"]["ok"])
        self.assertIn("No such file", state["collectors"]["memory"]["error"])
        self.assertIsNone(agent.validate_message({"type": "hardware.state", "data": state}))

    def test_every_fixture_sample_is_a_valid_hardware_state(self):
        for name in ("x86-desktop", "raspberry-pi", "jetson"):
            state = fixture_sampler(name, {"/": FakeStatvfs(10, 5, 5)}).sample(5)
            self.assertIsNone(agent.validate_message({"type": "hardware.state", "data": state}), name)


def meminfo_bytes(key):
    match = re.search(r"^%s:\s+(\d+) kB" % key, agent.read_text("/proc/meminfo"), re.M)
    assert match
    return int(match.group(1)) * 1024


class ThisMachineTest(unittest.TestCase):
    """The numbers are what the kernel reports here and now."""

    @classmethod
    def setUpClass(cls):
        sampler = agent.Sampler()
        time.sleep(0.2)
        cls.state = sampler.sample(5)

    def test_memory_matches_proc_meminfo(self):
        self.assertEqual(self.state["memory"]["total_bytes"], meminfo_bytes("MemTotal"))
        self.assertEqual(self.state["memory"]["swap_total_bytes"], meminfo_bytes("SwapTotal"))
        self.assertLess(abs(self.state["memory"]["available_bytes"] - meminfo_bytes("MemAvailable")), 0.05 * meminfo_bytes("MemTotal"))

    def test_one_cpu_percentage_per_core_of_proc_stat(self):
        cores = [l for l in agent.read_text("/proc/stat").splitlines() if re.match(r"cpu\d+ ", l)]
        self.assertEqual(len(self.state["cpu"]["per_core_pct"]), len(cores))
        self.assertTrue(all(0 <= p <= 100 for p in self.state["cpu"]["per_core_pct"] + [self.state["cpu"]["total_pct"]]))

    def test_load_uptime_and_boot_id_match_proc(self):
        self.assertLess(abs(self.state["load"]["load1"] - float(agent.read_text("/proc/loadavg").split()[0])), 0.5)
        self.assertLess(abs(self.state["uptime_s"] - float(agent.read_text("/proc/uptime").split()[0])), 2)
        self.assertEqual(self.state["host"]["boot_id"], agent.read_text("/proc/sys/kernel/random/boot_id").strip())
        self.assertEqual(self.state["host"]["kernel"], os.uname().release)

    def test_root_filesystem_size_matches_statvfs(self):
        root = [f for f in self.state["filesystems"] if f["mount"] == "/"]
        if not root:
            self.skipTest("/ is not a block-device filesystem here")
        st = os.statvfs("/")
        self.assertEqual(root[0]["size_bytes"], st.f_blocks * st.f_frsize)
        self.assertLess(abs(root[0]["used_bytes"] - (st.f_blocks - st.f_bfree) * st.f_frsize), 64 * 1024 * 1024)

    def test_process_count_and_network_counters_match_proc(self):
        pids = len([p for p in os.listdir("/proc") if p.isdigit()])
        self.assertLess(abs(self.state["processes"] - pids), max(20, pids // 5))
        now = agent.parse_net_dev(agent.read_text("/proc/net/dev"))
        for iface in self.state["network"]:
            self.assertLessEqual(iface["rx_bytes"], now[iface["iface"]][0])


if __name__ == "__main__":
    unittest.main()
