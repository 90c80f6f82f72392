"""Shim of MicroPython's network module: a WLAN that connects after a given number of polls."""
STA_IF = 0
polls_to_connect = 0


class WLAN:
    instances = []

    def __init__(self, interface):
        self.interface = interface
        self.connects = 0
        self._polls = None
        WLAN.instances.append(self)

    def active(self, on):
        self.on = on

    def connect(self, ssid, password):
        self.connects += 1
        self._polls = polls_to_connect

    def isconnected(self):
        if self._polls is None:
            return False
        if self._polls > 0:
            self._polls -= 1
            return False
        return True

    def status(self, what):
        if what == "rssi":
            return -67
        raise ValueError(what)
