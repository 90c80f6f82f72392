"""libs/c/dvic_log.h compiled with gcc and g++: byte-exact vectors and a real program."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.test_dvic_log import LIBS_DIR, REPO_DIR, read_lines

HEADER_DIR = os.path.join(LIBS_DIR, "c")
COMPILERS = (("gcc", ["-std=c99", "-pedantic"], ".c"), ("g++", ["-std=c++11", "-pedantic"], ".cpp"))
WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def c_string(text):
    """A C literal for UTF-8 text (octal escapes: no hex-digit run-on)."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\?' else "\\%03o" % b for b in text.encode("utf-8")) + '"'


def vector_program(vectors):
    lines = ['#include "dvic_log.h"', "int main(void) {", "  dvic_log_buf b = {NULL, 0, 0, 0};"]
    for case in vectors["records"]:
        r = case["input"]
        if "fields" in r or "\u0000" in r["message"]:
            continue  # the C API has no fields, and a C string cannot hold NUL
        lines.append("  b.len = 0; dvic_log_format_record(&b, %s, %s, %s); printf(\"%%s\\n\", b.data);"
                     % (c_string(r["ts"]), c_string(r["level"]), c_string(r["message"])))
    for i, case in enumerate(vectors["headers"]):
        h = case["input"]
        argv = ", ".join(c_string(a) for a in h["argv"])
        lines.append("  { static const char *const argv%d[] = {%s};" % (i, argv))
        lines.append("    dvic_log_header h = {%s, %d, %s, %d, %d, %s, argv%d, %d, %s, %d, %s, %s, %s, %s};"
                     % (c_string(h["token"]), h["generation"], c_string(h["demo"]), h["pid"], h["start_time"], c_string(h["exe"]),
                        i, len(h["argv"]), c_string(h["user"]), h["uid"], c_string(h["hostname"]), c_string(h["lang"]),
                        c_string(h["lib_version"]), c_string(h["started_at"])))
        lines.append("    b.len = 0; dvic_log_format_header(&b, &h); printf(\"%s\\n\", b.data); }")
    lines += ["  free(b.data);", "  return 0;", "}"]
    return "\n".join(lines) + "\n"


@unittest.skipUnless(shutil.which("gcc") and shutil.which("g++"), "gcc and g++ are needed")
class CHeaderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def compile(self, compiler, flags, source_path, output):
        result = subprocess.run([compiler] + flags + WARNINGS + ["-I", HEADER_DIR, source_path, "-o", output, "-pthread"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_formats_the_vectors_byte_for_byte_in_c_and_cpp(self):
        with open(os.path.join(REPO_DIR, "protocol", "vectors", "logs", "format.json"), encoding="utf-8") as f:
            vectors = json.load(f)
        expected = [c["line"] for c in vectors["records"] if "fields" not in c["input"] and "\u0000" not in c["input"]["message"]]
        expected += [c["line"] for c in vectors["headers"]]
        for compiler, flags, ext in COMPILERS:
            with self.subTest(compiler=compiler):
                source = os.path.join(self.dir, "vectors" + ext)
                with open(source, "w", encoding="utf-8") as f:
                    f.write(vector_program(vectors))
                binary = os.path.join(self.dir, "vectors-" + compiler)
                self.compile(compiler, flags, source, binary)
                out = subprocess.run([binary], stdout=subprocess.PIPE, timeout=30).stdout.decode("utf-8")
                self.assertEqual(out.splitlines(), expected)

    def test_a_program_writes_a_valid_log_file(self):
        for compiler, flags, ext in COMPILERS:
            with self.subTest(compiler=compiler):
                source = os.path.join(self.dir, "example" + ext)
                shutil.copy(os.path.join(HEADER_DIR, "example.c"), source)
                binary = os.path.join(self.dir, "example-" + compiler)
                self.compile(compiler, flags, source, binary)
                result = subprocess.run([binary, "5", "led-wall"], stdout=subprocess.PIPE, env=dict(os.environ, DVIC_LOG_DIR=self.dir), timeout=30)
                path = result.stdout.decode().strip()
                self.assertTrue(os.path.basename(path).startswith("dvic_log_"))
                self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
                header, records = read_lines(path)
                self.assertEqual((header["demo"], header["lang"], header["argv"]), ("led-wall", "cpp" if compiler == "g++" else "c", [binary, "5", "led-wall"]))
                self.assertEqual(header["exe"], binary)
                self.assertIsInstance(header["start_time"], int)
                self.assertEqual([r["level"] for r in records], ["INFO"] * 5 + ["WARN", "ERROR"])
                self.assertEqual(records[5]["message"], 'multi\nline "quoted" é')


if __name__ == "__main__":
    unittest.main()
