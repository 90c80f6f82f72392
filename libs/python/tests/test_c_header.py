"""libs/c/dvic_log.h compiled with gcc and g++: byte-exact vectors and a real program."""
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.log_files import (LIBS_DIR, TESTS_DIR, check_generations, expected_files, file_summary, header_problems, load_vectors,
                              read_lines, token_files)

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
        lines.append("    dvic_log_header h = {%s, %d, %d, %s, %d, %d, %s, argv%d, %d, %s, %d, %s, %s, %s, %s};"
                     % (c_string(h["token"]), h["generation"], h.get("records_before", -1), c_string(h["demo"]), h["pid"], h["start_time"], c_string(h["exe"]),
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
        vectors = load_vectors()
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
                self.assertEqual((header["generation"], header["records_before"]), (0, 0))
                self.assertEqual(header_problems(header), [])
                self.assertIsInstance(header["start_time"], int)
                self.assertEqual([r["level"] for r in records], ["INFO"] * 5 + ["WARN", "ERROR"])
                self.assertEqual(records[5]["message"], 'multi\nline "quoted" é')

    def rotation_demo(self, compiler, flags, ext):
        source = os.path.join(self.dir, "rotation_demo" + ext)
        shutil.copy(os.path.join(TESTS_DIR, "rotation_demo.c"), source)
        binary = os.path.join(self.dir, "rotation-" + compiler)
        self.compile(compiler, flags, source, binary)
        return binary

    def run_demo(self, binary, *args):
        """Runs the rotation demo in a directory of its own; (directory, token)."""
        directory = tempfile.mkdtemp(dir=self.dir)
        env = dict(os.environ, DVIC_LOG_DIR=directory)
        env.pop("DVIC_LOG_MAX_FILES", None)
        result = subprocess.run([binary] + [str(a) for a in args], stdout=subprocess.PIPE, env=env, timeout=60)
        self.assertEqual(result.returncode, 0)
        return directory, os.path.basename(result.stdout.decode().strip())[len("dvic_log_"):]

    def test_rotation_vectors_in_c_and_cpp(self):
        for compiler, flags, ext in COMPILERS:
            binary = self.rotation_demo(compiler, flags, ext)
            for case in load_vectors()["rotation"]:
                with self.subTest(compiler=compiler, case=case["description"]):
                    deletes = ["%d:%s" % (d["after_records"], ",".join(map(str, d["generations"]))) for d in case.get("agent_deletes", [])]
                    directory, token = self.run_demo(binary, "records", case["max_bytes"], case.get("max_files", -1), case["records"], *deletes)
                    self.assertEqual([file_summary(directory, n) for n in token_files(directory, token)], expected_files(case, token))
                    self.assertEqual(check_generations(self, directory, token), case["records"])

    def test_threads_and_forked_processes_keep_records_before_exact_in_c_and_cpp(self):
        for compiler, flags, ext in COMPILERS:
            binary = self.rotation_demo(compiler, flags, ext)
            for max_files in (1000, 2):
                with self.subTest(compiler=compiler, max_files=max_files):
                    directory, token = self.run_demo(binary, "writers", 16 * 1024, max_files, 4, 3, 1500)
                    self.assertEqual(check_generations(self, directory, token), 7 * 1500)
                    names = token_files(directory, token)
                    live = file_summary(directory, names[-1])["generation"]
                    kept = range(live) if max_files == 1000 else range(live - 2, live)
                    self.assertGreater(live, 20)
                    self.assertEqual(names, ["dvic_log_%s.%d" % (token, g) for g in kept] + ["dvic_log_" + token])
                    if max_files == 1000:
                        messages = [r["message"].split() for n in names for r in read_lines(os.path.join(directory, n))[1]]
                        for writer in ["child%d" % n for n in range(3)] + ["thread%d" % n for n in range(4)]:
                            self.assertEqual([int(m[1]) for m in messages if m[0] == writer], list(range(1500)), writer)


if __name__ == "__main__":
    unittest.main()
