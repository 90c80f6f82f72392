"""Pure /proc and /sys parsers, on literal text as the kernel writes it."""
import unittest

from tests.support import dvic_agent as agent


class ProcParsersTest(unittest.TestCase):
    def test_cpu_percentages_come_from_busy_and_idle_tick_deltas(self):
        before = agent.parse_stat_cpu("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 100 0 100 800 0 0 0 0 0 0\n")
        after = agent.parse_stat_cpu("cpu  150 0 150 900 100 0 0 0 0 0\ncpu0 150 0 150 900 100 0 0 0 0 0\n")
        # busy +100 of +300 ticks; iowait counts as idle
        self.assertEqual(agent.cpu_percent(before["cpu"], after["cpu"]), 33.33)
        self.assertEqual(agent.cpu_percent(before["cpu"], before["cpu"]), 0.0)

    def test_meminfo_is_read_in_bytes(self):
        m = agent.parse_meminfo("MemTotal:       16384 kB\nMemAvailable:    8192 kB\nHugePages_Total:       0\n")
        self.assertEqual(m, {"MemTotal": 16384 * 1024, "MemAvailable": 8192 * 1024, "HugePages_Total": 0})

    def test_loadavg_and_uptime(self):
        self.assertEqual(agent.parse_loadavg("0.21 0.37 0.39 1/719 19737\n"), {"load1": 0.21, "load5": 0.37, "load15": 0.39})
        self.assertEqual(agent.parse_uptime("354321.12 4123456.78\n"), 354321.12)

    def test_net_dev_leaves_out_loopback(self):
        text = ("Inter-| Receive | Transmit\n face |bytes packets|bytes packets\n"
                "    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 1234 5 0 0 0 0 0 0 5678 6 0 0 0 0 0 0\n")
        self.assertEqual(agent.parse_net_dev(text), {"eth0": (1234, 5678)})

    def test_mount_points_with_spaces_are_unescaped(self):
        mounts = agent.parse_mounts("/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\n")
        self.assertEqual(mounts, [("/dev/sda1", "/mnt/my disk", "ext4")])

    def test_real_filesystems_skip_pseudo_ones_and_bind_mounts_but_keep_tmp(self):
        nodev = agent.parse_nodev_filesystems("nodev\tproc\nnodev\ttmpfs\n\text4\n")
        mounts = [("/dev/sda1", "/", "ext4"), ("proc", "/proc", "proc"), ("tmpfs", "/run", "tmpfs"),
                  ("tmpfs", "/tmp", "tmpfs"), ("/dev/sda1", "/srv", "ext4")]
        self.assertEqual(agent.real_filesystems(mounts, nodev), [("/dev/sda1", "/", "ext4"), ("tmpfs", "/tmp", "tmpfs")])

    def test_os_release_and_cpu_model(self):
        self.assertEqual(agent.parse_os_release('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n')["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)")
        self.assertEqual(agent.parse_cpu_model("Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"), "Raspberry Pi 4 Model B Rev 1.4")
        self.assertEqual(agent.parse_cpu_model("model name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz\n"), "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz")

    def test_millidegrees(self):
        self.assertEqual(agent.parse_millidegrees("48312\n"), 48.31)
        self.assertEqual(agent.parse_millidegrees("-5000"), -5.0)


if __name__ == "__main__":
    unittest.main()
