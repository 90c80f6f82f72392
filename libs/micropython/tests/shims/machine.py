"""Shim of MicroPython's machine module: deepsleep is recorded, not slept."""
slept = []


def deepsleep(ms):
    slept.append(ms)
