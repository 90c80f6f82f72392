"""Reading and checking the files a library wrote (Python, the wrapper, the C header)."""
import json
import os
import re
import sys

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON_LIB_DIR = os.path.dirname(TESTS_DIR)
LIBS_DIR = os.path.dirname(PYTHON_LIB_DIR)
REPO_DIR = os.path.dirname(LIBS_DIR)
sys.path.insert(0, PYTHON_LIB_DIR)

import dvic_log  # noqa: E402


def load_protocol(*path):
    with open(os.path.join(REPO_DIR, "protocol", *path), encoding="utf-8") as f:
        return json.load(f)


def load_vectors():
    return load_protocol("vectors", "logs", "format.json")


def read_lines(path, closing=False):
    """(header, [records]) of a log file; every line must be one JSON object. The closing record
    a library writes when its demo ends is left out unless closing=True."""
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f.read().splitlines()]
    records = lines[1:]
    if not closing and records and "dvic_end" in records[-1].get("fields", {}):
        records = records[:-1]
    return lines[0], records


# ---- the header schema (protocol/schemas/log-header.json), for the keywords it uses ---------

TYPES = {"integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
         "string": lambda v: isinstance(v, str), "array": lambda v: isinstance(v, list)}


def _value_problems(value, rule, where):
    if "const" in rule and value != rule["const"]:
        return ["%s is not %r" % (where, rule["const"])]
    if "type" in rule and not TYPES[rule["type"]](value):
        return ["%s is not an %s" % (where, rule["type"])]
    size = len(value) if isinstance(value, (str, list)) else None
    problems = ["%s breaks %s" % (where, key) for key, broken in (
        ("minimum", lambda limit: value < limit), ("maximum", lambda limit: value > limit),
        ("minLength", lambda limit: size < limit), ("maxLength", lambda limit: size > limit),
        ("maxItems", lambda limit: size > limit), ("pattern", lambda pattern: not re.search(pattern, str(value))),
    ) if key in rule and broken(rule[key])]
    for i, item in enumerate(value if "items" in rule else []):
        problems += _value_problems(item, rule["items"], "%s/%d" % (where, i))
    return problems


def header_problems(header):
    """What a header breaks in log-header.json; a key the schema does not name is a problem too."""
    schema = load_protocol("schemas", "log-header.json")
    problems = ["%s is missing" % key for key in schema["required"] if key not in header]
    for key, value in header.items():
        rule = schema["properties"].get(key)
        problems += _value_problems(value, rule, key) if rule is not None else ["%s is not in the schema" % key]
    return problems


# ---- the files of one token ---------------------------------------------------------------

def token_files(directory, token):
    """Names of the files of a token: rotated generations oldest first, then the live file."""
    names = [n for n in os.listdir(directory) if n == "dvic_log_" + token or n.startswith("dvic_log_%s." % token)]
    return sorted(names, key=lambda n: int(n.rsplit(".", 1)[1]) if "." in n else float("inf"))


def file_summary(directory, name):
    header, records = read_lines(os.path.join(directory, name))
    return {"name": name, "generation": header["generation"], "records_before": header["records_before"], "records": len(records)}


def check_canonical_bytes(test, path):
    """Every line is what the formatting functions (checked against the vectors) make of it, and
    the header matches the schema."""
    with open(path, encoding="utf-8") as f:
        header_line, *record_lines = f.read().splitlines()
    header = json.loads(header_line)
    test.assertEqual(dvic_log.format_header(header), header_line)
    test.assertEqual(list(header), [k for k in dvic_log.HEADER_KEYS if k in header])
    test.assertEqual(header_problems(header), [])
    for line in record_lines:
        r = json.loads(line)
        test.assertEqual(dvic_log.format_record(r["ts"], r["level"], r["message"], r.get("fields")), line)


def check_generations(test, directory, token):
    """Checks every file of a token (bytes, schema, records_before chained exactly across the
    generations on disk) and returns the records the token has had in all: those before the live
    file plus those in it."""
    summaries = [file_summary(directory, name) for name in token_files(directory, token)]
    for earlier, later in zip(summaries, summaries[1:]):
        if later["generation"] == earlier["generation"] + 1:
            test.assertEqual(later["records_before"], earlier["records_before"] + earlier["records"], later["name"])
        else:
            test.assertGreater(later["generation"], earlier["generation"])
            test.assertGreater(later["records_before"], earlier["records_before"] + earlier["records"])
    for summary in summaries:
        check_canonical_bytes(test, os.path.join(directory, summary["name"]))
        if summary["name"] != "dvic_log_" + token:
            test.assertEqual(summary["name"], "dvic_log_%s.%d" % (token, summary["generation"]))
            test.assertGreater(summary["records"], 0)
    live = summaries[-1]
    test.assertEqual(live["name"], "dvic_log_" + token)
    return live["records_before"] + live["records"]


def expected_files(case, token):
    return [dict(f, name=f["name"].replace("<token>", token)) for f in case["files"]]
