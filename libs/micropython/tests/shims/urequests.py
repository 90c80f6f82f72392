"""Shim of MicroPython's urequests for CPython tests: post() over urllib to a real server."""
import urllib.error
import urllib.request

calls = []
fail_with = None


class Response:
    def __init__(self, status_code, text):
        self.status_code = status_code
        self.text = text

    def close(self):
        pass


def post(url, data=None, headers=None):
    calls.append((url, data))
    if fail_with is not None:
        raise fail_with
    body = data.encode() if isinstance(data, str) else data
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return Response(answer.status, answer.read().decode())
    except urllib.error.HTTPError as err:
        return Response(err.code, err.read().decode())
