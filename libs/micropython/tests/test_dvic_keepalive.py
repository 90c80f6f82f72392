"""dvic_keepalive under CPython with shims of urequests, network and machine. With DVIC_TEST_URL
and DVIC_TEST_TOKEN (set by test/micropython.test.ts) the keepalives go to a real server."""
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "shims"), os.path.dirname(HERE)]

import machine  # noqa: E402  (the shim)
import network  # noqa: E402
import urequests  # noqa: E402

import dvic_keepalive  # noqa: E402

URL = os.environ.get("DVIC_TEST_URL", "http://127.0.0.1:9")
TOKEN = os.environ.get("DVIC_TEST_TOKEN", "dvk_test")


class KeepaliveTest(unittest.TestCase):
    def setUp(self):
        urequests.calls.clear()
        urequests.fail_with = None
        machine.slept.clear()
        network.polls_to_connect = 0

    def test_body_carries_numbers_logs_and_board_figures(self):
        k = dvic_keepalive.Keepalive(URL + "/", TOKEN, ssid="lab", password="pw")
        self.assertEqual(k.url, URL + "/api/v1/devices/" + TOKEN + "/keepalive")
        k.connect()
        k.firmware = "1.2"
        k.set_number("temp_c", 21.5)
        for i in range(25):
            k.info("line %d" % i)
        k.log("LOUD", "unknown level")
        body = json.loads(k.body())
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["rssi"], -67)
        self.assertEqual(body["firmware"], "1.2")
        self.assertEqual(body["numbers"], {"temp_c": 21.5, "dropped_logs": 6})
        self.assertEqual(len(body["logs"]), 20)
        self.assertEqual(body["logs"][0]["message"], "line 6")
        self.assertEqual(body["logs"][-1]["level"], "INFO")

    def test_failed_send_keeps_logs_and_backs_off(self):
        k = dvic_keepalive.Keepalive(URL, TOKEN, period_s=60)
        k.warn("kept")
        urequests.fail_with = OSError("no route")
        self.assertEqual(k.send(), -1)
        self.assertEqual(len(k.logs), 1)
        self.assertFalse(k.due())
        first = k._next - dvic_keepalive.ticks_ms()
        self.assertTrue(0 < first <= 2000)
        k._next = dvic_keepalive.ticks_ms()
        self.assertEqual(k.send(), -1)
        self.assertTrue(k._next - dvic_keepalive.ticks_ms() <= 4000)
        self.assertEqual(k._backoff.attempts, 2)

    def test_wifi_reconnects_with_backoff_before_sending(self):
        network.polls_to_connect = 3
        k = dvic_keepalive.Keepalive(URL, TOKEN, ssid="lab", password="pw")
        self.assertEqual(k.loop(), 0)  # not connected yet: connecting, nothing sent
        self.assertEqual(urequests.calls, [])
        self.assertEqual(k.wlan().connects, 1)
        self.assertEqual(k.loop(), 0)  # within the WiFi backoff: no new attempt
        self.assertEqual(k.wlan().connects, 1)

    @unittest.skipUnless(os.environ.get("DVIC_TEST_URL"), "needs a server (test/micropython.test.ts)")
    def test_against_the_real_server(self):
        k = dvic_keepalive.Keepalive(URL, TOKEN, period_s=1, ssid="lab", password="pw")
        k.connect()
        k.demo = "mpy"
        k.set_number("temp_c", 20)
        k.error("sensor glitch")
        self.assertEqual(k.loop(), 204)
        self.assertEqual(k.logs, [])
        self.assertEqual(k.loop(), 0)  # not due before the period
        time.sleep(1.05)
        k.set_status("fail", "sensor lost")
        self.assertEqual(k.loop(), 204)
        bad = dvic_keepalive.Keepalive(URL, "dvk_wrong")
        bad.warn("dropped: the token is wrong")
        self.assertEqual(bad.send(), 404)
        self.assertEqual(bad.logs, [])  # not retried sooner
        k.send_and_sleep(300)
        self.assertEqual(machine.slept, [300000])


if __name__ == "__main__":
    unittest.main()
