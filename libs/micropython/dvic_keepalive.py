"""Keepalives from MicroPython boards (ESP32, ESP8266, Pico W) to a DVIC Demo Monitor server.

    import dvic_keepalive
    dvic = dvic_keepalive.Keepalive("http://dvic.lab:8787", "dvk_...", period_s=30,
                                    ssid="lab-wifi", password="...")
    dvic.info("booted")
    while True:
        dvic.set_number("temp_c", read_temp())
        dvic.loop()              # WiFi kept up with backoff; a keepalive when due
        time.sleep(1)

Each keepalive is POST <server>/api/v1/devices/<token>/keepalive with a JSON body (uptime_s,
rssi, free_heap, numbers, the buffered log lines). A failed send is retried with backoff and
keeps its logs. send_and_sleep(s) sends one keepalive then machine.deepsleep (docs/devices.md).
"""
import gc
import time

try:
    import ujson as json
except ImportError:  # CPython (tests)
    import json

import urequests

MAX_LOGS = 20
MAX_NUMBERS = 50
MAX_LOG_CHARS = 200
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
# 400 (bad body), 401, 404 (unknown token), 413 (too big): sending the same again cannot help.
REJECTED = (400, 401, 404, 413)


def ticks_ms():
    if hasattr(time, "ticks_ms"):
        return time.ticks_ms()
    return int(time.monotonic() * 1000)


def ticks_diff(a, b):
    if hasattr(time, "ticks_diff"):
        return time.ticks_diff(a, b)
    return a - b


def free_heap():
    mem_free = getattr(gc, "mem_free", None)
    return mem_free() if mem_free else 0


class Backoff:
    """Exponential backoff with jitter: base, 2x base, ... up to max_ms; reset on success."""

    def __init__(self, base_ms, max_ms):
        self.base_ms = base_ms
        self.max_ms = max_ms
        self.attempts = 0

    def next(self, random=0):
        delay = min(self.max_ms, self.base_ms * (2 ** min(self.attempts, 20)))
        self.attempts += 1
        return delay // 2 + random % (delay // 2 + 1)

    def reset(self):
        self.attempts = 0


class Keepalive:
    def __init__(self, server, token, period_s=60, ssid=None, password=None, wlan=None):
        self.url = server.rstrip("/") + "/api/v1/devices/" + token + "/keepalive"
        self.period_ms = max(1, int(period_s)) * 1000
        self.ssid = ssid
        self.password = password
        self.status = "ok"
        self.message = None
        self.firmware = None
        self.demo = None
        self.numbers = {}
        self.logs = []
        self.dropped_logs = 0
        self.last_status = 0
        self._next = None
        self._backoff = Backoff(2000, 300000)
        self._wifi_backoff = Backoff(1000, 60000)
        self._wifi_retry = 0
        self._wlan = wlan
        self._started = ticks_ms()

    # --- what is sent -------------------------------------------------------------------
    def set_status(self, status, message=None):
        """'ok' (default) or 'fail' (the device shows down at once), with an optional message."""
        self.status = status
        self.message = message

    def set_number(self, name, value):
        if name not in self.numbers and len(self.numbers) >= MAX_NUMBERS:
            return False
        self.numbers[name] = value
        return True

    def log(self, level, message):
        """A log line for the next keepalive (20 kept; the oldest dropped and counted)."""
        if level not in LEVELS:
            level = "INFO"
        if len(self.logs) >= MAX_LOGS:
            self.logs.pop(0)
            self.dropped_logs += 1
        self.logs.append({"level": level, "message": str(message)[:MAX_LOG_CHARS], "at": ticks_ms()})

    def info(self, message):
        self.log("INFO", message)

    def warn(self, message):
        self.log("WARN", message)

    def error(self, message):
        self.log("ERROR", message)

    def body(self):
        data = {"status": self.status, "uptime_s": ticks_diff(ticks_ms(), self._started) // 1000}
        if self.message:
            data["message"] = self.message
        rssi = self._rssi()
        if rssi:
            data["rssi"] = rssi
        heap = free_heap()
        if heap:
            data["free_heap"] = heap
        if self.firmware:
            data["firmware"] = self.firmware
        if self.demo:
            data["demo"] = self.demo
        numbers = dict(self.numbers)
        if self.dropped_logs:
            numbers["dropped_logs"] = self.dropped_logs
        if numbers:
            data["numbers"] = numbers
        if self.logs:
            data["logs"] = self.logs
        return json.dumps(data)

    # --- sending ------------------------------------------------------------------------
    def send(self):
        """Sends one keepalive now: the HTTP status, or -1 when the server could not be reached."""
        now = ticks_ms()
        try:
            response = urequests.post(self.url, data=self.body(), headers={"Content-Type": "application/json"})
            status = response.status_code
            response.close()
        except OSError:
            status = -1
        self.last_status = status
        if 200 <= status < 300 or status in REJECTED:
            self.logs = []
            self.dropped_logs = 0
            self._backoff.reset()
            self._next = now + self.period_ms
        else:
            self._next = now + self._backoff.next(now)
        return status

    def due(self):
        return self._next is None or ticks_diff(ticks_ms(), self._next) >= 0

    def loop(self):
        """Call often: keeps WiFi up (with backoff) and sends a keepalive when due; the HTTP status or 0."""
        if not self.connected():
            now = ticks_ms()
            if ticks_diff(now, self._wifi_retry) >= 0:
                self.connect(timeout_s=0)
                self._wifi_retry = now + self._wifi_backoff.next(now)
            return 0
        self._wifi_backoff.reset()
        return self.send() if self.due() else 0

    def send_and_sleep(self, seconds, timeout_s=15):
        """Connects (up to timeout_s), sends one keepalive, then deep-sleeps; the board restarts after."""
        import machine

        if self.connect(timeout_s):
            self.send()
        machine.deepsleep(int(seconds * 1000))

    # --- WiFi ---------------------------------------------------------------------------
    def wlan(self):
        if self._wlan is None:
            import network

            self._wlan = network.WLAN(network.STA_IF)
            self._wlan.active(True)
        return self._wlan

    def connected(self):
        return self.ssid is None or self.wlan().isconnected()

    def connect(self, timeout_s=15):
        """Starts connecting; waits up to timeout_s. True once connected (or without WiFi to manage)."""
        if self.connected():
            return True
        self.wlan().connect(self.ssid, self.password)
        deadline = ticks_ms() + int(timeout_s * 1000)
        while not self.wlan().isconnected() and ticks_diff(deadline, ticks_ms()) > 0:
            time.sleep(0.1)
        return self.wlan().isconnected()

    def _rssi(self):
        if self.ssid is None:
            return 0
        try:
            return self.wlan().status("rssi")
        except (OSError, ValueError, TypeError):
            return 0
