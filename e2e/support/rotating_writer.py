"""A demo log writer that follows the rotation contract of docs/log-format.md to the letter, with
a small size cap: at the cap dvic_log_<token> is renamed dvic_log_<token>.<generation> and a new
file starts whose header has generation + 1 and records_before (the records written to every
earlier generation); at most max_files rotated generations are kept, older ones are deleted.

    rotating_writer.py DIR DEMO CAP_BYTES MAX_FILES   then on stdin: "write N" ... "exit"

Each line is "seq <n>"; after each command it prints "written <total>"."""
import base64
import json
import os
import sys


def start_time():
    with open("/proc/self/stat") as f:
        text = f.read()
    return int(text[text.rindex(")") + 2:].split()[19])


class Writer(object):
    def __init__(self, directory, demo, cap, max_files):
        self.demo, self.cap, self.max_files = demo, cap, max_files
        self.token = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        self.path = os.path.join(directory, "dvic_log_" + self.token)
        self.generation = self.written = self.size = 0
        self.fd = self.create()

    def create(self):
        header = {"dvic_log": 1, "token": self.token, "generation": self.generation, "demo": self.demo, "pid": os.getpid(),
                  "start_time": start_time(), "uid": os.getuid(), "records_before": self.written}
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self.size = os.write(fd, (json.dumps(header, separators=(",", ":")) + "\n").encode())
        return fd

    def write(self, count):
        for _ in range(count):
            line = '{"ts":"2026-11-25T10:00:00.000Z","level":"INFO","message":"seq %d"}\n' % self.written
            self.size += os.write(self.fd, line.encode())
            self.written += 1
            if self.size > self.cap:
                self.rotate()

    def rotate(self):
        os.rename(self.path, "%s.%d" % (self.path, self.generation))
        try:
            os.unlink("%s.%d" % (self.path, self.generation - self.max_files))
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.generation += 1
        self.fd = self.create()


def main():
    writer = Writer(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    for command in sys.stdin:
        if command.startswith("write "):
            writer.write(int(command.split()[1]))
            print("written %d" % writer.written, flush=True)
        elif command.strip() == "exit":
            break


if __name__ == "__main__":
    main()
