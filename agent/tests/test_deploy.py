"""Deploys: archives unpacked without escaping, chunked resumable downloads, swap and rollback,
through the agent's own dispatch (the server's side is played by this test over the same frames)."""
import hashlib
import io
import json
import os
import stat
import tarfile
import threading
import unittest
import zipfile

from tests.support import dvic_agent, make_agent, temp_dir, wait_until

DeployError = dvic_agent.DeployError


def tar_gz(entries):
    """entries: (name, kind, content-or-target); kinds file, dir, symlink, hardlink, chr, fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = value
            tar.addfile(info)
    return buf.getvalue()


def zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, kind, value in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = ((stat.S_IFLNK | 0o777) if kind == "symlink" else (stat.S_IFREG | 0o644)) << 16
            zf.writestr(info, value)
    return buf.getvalue()


class ExtractionTest(unittest.TestCase):
    def setUp(self):
        self.root = temp_dir(self)
        self.outside = os.path.join(self.root, "outside")
        os.mkdir(self.outside)
        self.dest = os.path.join(self.root, "a", "b", "dest")
        os.makedirs(self.dest)

    def extract(self, data, kind="tar"):
        archive = os.path.join(self.root, "archive")
        with open(archive, "wb") as f:
            f.write(data)
        (dvic_agent.extract_tar if kind == "tar" else dvic_agent.extract_zip)(archive, self.dest)

    def refused(self, data, words, kind="tar"):
        with self.assertRaises(DeployError) as caught:
            self.extract(data, kind)
        self.assertIn(words, str(caught.exception))
        self.assertEqual(os.listdir(self.outside), [], "nothing written outside")
        self.assertFalse(os.path.exists(os.path.join(self.root, "a", "evil")))
        return str(caught.exception)

    def test_unpacks_files_directories_and_inner_links(self):
        self.extract(tar_gz([("./app/", "dir", None), ("./app/run.py", "file", b"print(1)\n"),
                             ("app/current", "symlink", "run.py"), ("app/copy.py", "hardlink", "app/run.py")]))
        self.assertEqual(open(os.path.join(self.dest, "app", "run.py"), "rb").read(), b"print(1)\n")
        self.assertEqual(os.readlink(os.path.join(self.dest, "app", "current")), "run.py")
        self.assertEqual(os.stat(os.path.join(self.dest, "app", "copy.py")).st_nlink, 2)

    def test_refuses_traversal_with_dot_dot(self):
        self.refused(tar_gz([("ok.txt", "file", b"x"), ("../../evil", "file", b"x")]), "escapes with '..'")

    def test_refuses_absolute_paths(self):
        self.refused(tar_gz([(self.outside + "/evil", "file", b"x")]), "absolute path")

    def test_refuses_a_symlink_pointing_outside(self):
        self.refused(tar_gz([("link", "symlink", "../../../outside")]), "points outside")
        self.refused(tar_gz([("abs", "symlink", self.outside)]), "points outside")

    def test_never_writes_through_a_symlink_of_the_archive(self):
        self.refused(tar_gz([("link", "symlink", self.outside), ("link/evil", "file", b"x")]), "points outside")

    def test_refuses_chained_symlinks_that_climb_out(self):
        self.refused(tar_gz([("p/q/r", "symlink", "../.."), ("u", "symlink", "p/q/r/../..")]), "points outside")

    def test_refuses_a_hard_link_to_a_file_outside(self):
        self.refused(tar_gz([("h", "hardlink", self.outside + "/secret")]), "absolute path")
        self.refused(tar_gz([("h", "hardlink", "../../outside/secret")]), "escapes")

    def test_refuses_device_files_and_fifos(self):
        self.refused(tar_gz([("dev", "chr", None)]), "device file")
        self.refused(tar_gz([("pipe", "fifo", None)]), "FIFO")

    def test_zip_traversal_and_symlink_escape_are_refused(self):
        self.refused(zip_bytes([("../evil", "file", b"x")]), "escapes", "zip")
        self.refused(zip_bytes([("link", "symlink", "/etc")]), "points outside", "zip")

    def test_zip_unpacks(self):
        self.extract(zip_bytes([("d/f.txt", "file", b"hello"), ("d/l", "symlink", "f.txt")]), "zip")
        self.assertEqual(open(os.path.join(self.dest, "d", "l"), "rb").read(), b"hello")


    def test_a_hard_link_through_a_symlink_replaced_later_is_refused(self):
        # "l" points outside, "h" hard-links through it, then "l" comes again pointing inside: the
        # final symlink check sees only the inner "l", so the hard link itself must be checked.
        with open(os.path.join(self.outside, "secret"), "wb") as f:
            f.write(b"secret")
        with self.assertRaises(DeployError) as caught:
            self.extract(tar_gz([("l", "symlink", "../../../outside"), ("h", "hardlink", "l/secret"), ("l", "symlink", ".")]))
        self.assertIn("hard link", str(caught.exception))
        self.assertEqual(os.stat(os.path.join(self.outside, "secret")).st_nlink, 1, "no link made to the outside file")
        self.assertFalse(os.path.lexists(os.path.join(self.dest, "h")))


    def test_refuses_a_hard_link_to_a_symlink_of_the_archive(self):
        self.refused(tar_gz([("f", "file", b"x"), ("l", "symlink", "f"), ("h", "hardlink", "l")]), "hard link")

class OwnerModeTest(unittest.TestCase):
    """apply_owner_mode as root: everything inside handed over, no symlink followed, the top last."""

    def setUp(self):
        import pwd
        self.root = temp_dir(self)
        self.user = pwd.getpwnam("nobody")
        self.staging = os.path.join(self.root, "staging")
        os.makedirs(os.path.join(self.staging, "sub"))
        os.chmod(self.staging, 0o700)
        with open(os.path.join(self.staging, "sub", "run.py"), "wb") as f:
            f.write(b"x")
        self.outside = os.path.join(self.root, "outside.txt")
        with open(self.outside, "wb") as f:
            f.write(b"root's")
        os.symlink(self.outside, os.path.join(self.staging, "sub", "to-outside"))
        os.symlink(self.root, os.path.join(self.staging, "to-root-dir"))

    def owner(self, path):
        st = os.lstat(path)
        return (st.st_uid, st.st_gid)

    def test_hands_over_the_whole_tree_and_follows_no_symlink(self):
        dvic_agent.apply_owner_mode(self.staging, "nobody", "0750", True)
        expected = (self.user.pw_uid, self.user.pw_gid)
        for rel in ("", "sub", "sub/run.py", "sub/to-outside", "to-root-dir"):
            self.assertEqual(self.owner(os.path.join(self.staging, rel)), expected, rel)
        self.assertEqual(self.owner(self.outside), (0, 0), "the file a symlink points to keeps its owner")
        self.assertEqual(self.owner(self.root), (0, 0), "the directory a symlink points to keeps its owner")
        self.assertEqual(stat.S_IMODE(os.stat(self.staging).st_mode), 0o750)

    def test_the_top_stays_roots_and_closed_until_everything_inside_is_done(self):
        seen = []
        real_chown = os.chown

        def recording_chown(path, uid, gid, **kw):
            top = os.stat(self.staging)
            seen.append((path, top.st_uid, stat.S_IMODE(top.st_mode)))
            return real_chown(path, uid, gid, **kw)
        os.chown = recording_chown
        try:
            dvic_agent.apply_owner_mode(self.staging, "nobody", "", True)
        finally:
            os.chown = real_chown
        self.assertEqual(seen[-1][0], self.staging, "the top is handed over last")
        self.assertGreaterEqual(len(seen), 5)
        for path, uid, mode in seen:
            self.assertEqual((uid, mode), (0, 0o700), "while %s was changed" % path)
        self.assertEqual(stat.S_IMODE(os.stat(self.staging).st_mode), 0o755)

    def test_an_unknown_owner_is_a_clear_error(self):
        with self.assertRaises(DeployError) as caught:
            dvic_agent.apply_owner_mode(self.staging, "no-such-user-dvic", "", True)
        self.assertIn("no such user", str(caught.exception))
        self.assertEqual(self.owner(self.staging), (0, 0))


class PathTest(unittest.TestCase):
    def test_only_paths_strictly_under_a_root(self):
        roots = ["/opt/dvic-demos"]
        self.assertEqual(dvic_agent.check_deploy_path("/opt/dvic-demos/robot", roots), "/opt/dvic-demos")
        for bad in ("/opt/dvic-demos", "/opt/dvic-demos-x/a", "/opt/dvic-demos/../etc/x", "/etc/passwd", "opt/dvic-demos/a", "/opt/dvic-demos//a"):
            with self.assertRaises(DeployError, msg=bad):
                dvic_agent.check_deploy_path(bad, roots)

    def test_refuses_a_parent_that_is_a_symlink(self):
        root = temp_dir(self)
        os.symlink("/etc", os.path.join(root, "sneaky"))
        with self.assertRaises(DeployError) as caught:
            dvic_agent.prepare_parent(os.path.join(root, "sneaky", "x"), root)
        self.assertIn("symlink", str(caught.exception))

    def test_refuses_a_parent_other_users_may_write_to(self):
        root = temp_dir(self)
        os.mkdir(os.path.join(root, "shared"))
        os.chmod(os.path.join(root, "shared"), 0o777)
        with self.assertRaises(DeployError) as caught:
            dvic_agent.prepare_parent(os.path.join(root, "shared", "x"), root)
        self.assertIn("writable by other users", str(caught.exception))

    def test_refuses_a_symlink_higher_up_before_creating_anything_through_it(self):
        root, outside = temp_dir(self), temp_dir(self)
        os.symlink(outside, os.path.join(root, "a"))
        with self.assertRaises(DeployError) as caught:
            dvic_agent.prepare_parent(os.path.join(root, "a", "b", "c", "x"), root)
        self.assertIn("symlink", str(caught.exception))
        self.assertEqual(os.listdir(outside), [], "nothing created through the link")

    def test_refuses_any_level_other_users_may_write_to_not_only_the_parent(self):
        root = temp_dir(self)
        os.makedirs(os.path.join(root, "shared", "mine"))
        os.chmod(os.path.join(root, "shared"), 0o1777)
        with self.assertRaises(DeployError) as caught:
            dvic_agent.prepare_parent(os.path.join(root, "shared", "mine", "x"), root)
        self.assertIn("shared is writable by other users", str(caught.exception))

    def test_refuses_a_level_owned_by_another_user(self):
        root = temp_dir(self)
        os.makedirs(os.path.join(root, "theirs", "sub"))
        os.chown(os.path.join(root, "theirs"), 65534, 65534)
        with self.assertRaises(DeployError) as caught:
            dvic_agent.prepare_parent(os.path.join(root, "theirs", "sub", "x"), root)
        self.assertIn("owned by uid 65534", str(caught.exception))

    def test_refuses_a_file_where_a_directory_was_expected(self):
        root = temp_dir(self)
        with open(os.path.join(root, "f"), "w"):
            pass
        with self.assertRaises(DeployError) as caught:
            dvic_agent.prepare_parent(os.path.join(root, "f", "x"), root)
        self.assertIn("not a directory", str(caught.exception))

    def test_creates_missing_levels_0755(self):
        root = temp_dir(self)
        dvic_agent.prepare_parent(os.path.join(root, "a", "b", "x"), root)
        for rel in ("a", "a/b"):
            st = os.lstat(os.path.join(root, rel))
            self.assertTrue(stat.S_ISDIR(st.st_mode))
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode) & 0o022), (0, 0))
        self.assertFalse(os.path.exists(os.path.join(root, "a", "b", "x")))

    def test_refuses_a_fifo_where_a_file_was_expected(self):
        root = temp_dir(self)
        os.mkfifo(os.path.join(root, "f"))
        with self.assertRaises(DeployError) as caught:
            dvic_agent.check_target(os.path.join(root, "f"), False)
        self.assertIn("special file", str(caught.exception))


class FakeServer(object):
    """Answers the agent's deploy.fetch messages with chunks of `data`, as the server does."""

    def __init__(self, test, agent, data):
        self.agent, self.data = agent, data
        self.seen = 0
        self.offsets = []
        self.stop = threading.Event()
        test.addCleanup(self.stop.set)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.wait(0.005):
            frames = self.agent.frames[self.seen:]
            self.seen += len(frames)
            for m in frames:
                if m["type"] == "deploy.fetch":
                    d = m["data"]
                    self.offsets.append(d["offset"])
                    chunk = self.data[d["offset"]:d["offset"] + d["length"]]
                    payload = bytes([dvic_agent.OP_ARTIFACT_CHUNK]) + (7).to_bytes(4, "big") + d["offset"].to_bytes(8, "big") + chunk
                    self.agent._on_binary(payload)


class DeployFlowTest(unittest.TestCase):
    def setUp(self):
        self.roots = temp_dir(self)
        self.agent = make_agent(self, deploy_roots=[self.roots])
        self.path = os.path.join(self.roots, "demo")

    def request(self, data, deploy_id="d1", **fields):
        message = {"deploy_id": deploy_id, "action": "deploy", "path": self.path, "channel": 7, "sha256": hashlib.sha256(data).hexdigest(),
                   "size": len(data), "format": "file", "chunk_bytes": 4096}
        message.update(fields)
        self.agent._on_text(json.dumps({"type": "deploy.request", "data": message}).encode())

    def final(self, deploy_id="d1"):
        def ended():
            states = [m["data"] for m in self.agent.of_type("deploy.status") if m["data"]["deploy_id"] == deploy_id]
            return states[-1] if states and states[-1]["state"] in ("done", "failed", "cancelled") else None
        return wait_until(ended, 20, "the deploy to end")

    def steps(self, deploy_id="d1"):
        return [m["data"]["state"] for m in self.agent.of_type("deploy.status") if m["data"]["deploy_id"] == deploy_id]

    def test_deploys_a_file_then_rolls_back_to_the_previous(self):
        old = b"old version\n"
        with open(self.path, "wb") as f:
            f.write(old)
        new = os.urandom(50000)
        FakeServer(self, self.agent, new)
        self.request(new, mode="0640", pre_command="true", post_command="true")
        self.assertEqual(self.final()["state"], "done", self.agent.of_type("deploy.status"))
        self.assertEqual(open(self.path, "rb").read(), new)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o640)
        for step in ("downloading", "verifying", "pre_command", "switching", "post_command", "done"):
            self.assertIn(step, self.steps())
        self.agent._on_text(json.dumps({"type": "deploy.request", "data": {"deploy_id": "d1", "action": "rollback", "path": self.path}}).encode())
        wait_until(lambda: self.steps().count("done") == 2, 20, "the rollback")
        self.assertEqual(open(self.path, "rb").read(), old)
        self.assertEqual(sorted(os.listdir(self.roots)), [".demo.dvic-prev", "demo"], "no temp file left")

    def test_continues_an_interrupted_download_from_the_bytes_it_kept(self):
        data = os.urandom(40000)
        with open(os.path.join(self.roots, ".demo.dvic-part-d1"), "wb") as f:
            f.write(data[:16384])
        server = FakeServer(self, self.agent, data)
        self.request(data)
        self.assertEqual(self.final()["state"], "done")
        self.assertEqual(open(self.path, "rb").read(), data)
        self.assertEqual(min(server.offsets), 16384)
        first = [m["data"] for m in self.agent.of_type("deploy.status") if m["data"]["state"] == "downloading"][0]
        self.assertEqual(first["resumed_from"], 16384)

    def test_a_wrong_hash_is_refused_and_nothing_is_swapped(self):
        FakeServer(self, self.agent, b"tampered" * 100)
        self.request(b"original" * 100)
        result = self.final()
        self.assertEqual(result["state"], "failed")
        self.assertIn("sha256 mismatch", result["message"])
        self.assertEqual(os.listdir(self.roots), [])

    def test_extracts_an_archive_into_a_directory(self):
        data = tar_gz([("bin/run.sh", "file", b"#!/bin/sh\n"), ("README", "file", b"hi")])
        FakeServer(self, self.agent, data)
        self.request(data, format="tar.gz", extract=True, mode="0750")
        self.assertEqual(self.final()["state"], "done", self.agent.of_type("deploy.status"))
        self.assertEqual(sorted(os.listdir(self.path)), ["README", "bin"])
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o750)

    def test_a_traversal_archive_fails_with_a_clear_error_and_leaves_nothing(self):
        data = tar_gz([("../../escaped", "file", b"x")])
        FakeServer(self, self.agent, data)
        self.request(data, format="tar.gz", extract=True)
        result = self.final()
        self.assertEqual(result["state"], "failed")
        self.assertIn("escapes with '..'", result["message"])
        self.assertEqual(os.listdir(self.roots), [])
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(self.roots), "escaped")))

    def test_a_path_outside_the_roots_is_refused(self):
        self.request(b"x", path="/etc/dvic-evil")
        result = self.final()
        self.assertEqual(result["state"], "failed")
        self.assertIn("outside the allowed roots", result["message"])

    def test_a_failing_pre_command_stops_before_the_swap(self):
        data = b"new"
        FakeServer(self, self.agent, data)
        self.request(data, pre_command="echo no way >&2; exit 3")
        result = self.final()
        self.assertEqual(result["state"], "failed")
        self.assertIn("pre_command failed (exit 3): no way", result["message"])
        self.assertFalse(os.path.exists(self.path))

    def test_a_request_sent_again_after_it_was_done_is_not_done_twice(self):
        data = b"v1"
        FakeServer(self, self.agent, data)
        self.request(data)
        self.final()
        fetches = len(self.agent.of_type("deploy.fetch"))
        self.request(data)
        wait_until(lambda: self.steps().count("done") == 2, 20, "the second answer")
        self.assertEqual(len(self.agent.of_type("deploy.fetch")), fetches)
        self.assertFalse(os.path.exists(os.path.join(self.roots, ".demo.dvic-prev")))

    def test_a_planted_hard_link_as_the_download_file_is_refused(self):
        victim = os.path.join(temp_dir(self), "victim")
        with open(victim, "wb") as f:
            f.write(b"precious")
        os.link(victim, os.path.join(self.roots, ".demo.dvic-part-d1"))
        self.request(b"x" * 100)
        result = self.final()
        self.assertEqual(result["state"], "failed")
        self.assertIn("not this agent's download", result["message"])
        self.assertEqual(open(victim, "rb").read(), b"precious")

    def test_a_cancel_during_the_download_stops_it_and_keeps_nothing(self):
        data = os.urandom(20000)
        self.request(data)  # nobody answers the fetches: the download waits
        wait_until(lambda: self.agent.of_type("deploy.fetch"), 10, "a fetch")
        self.agent._on_text(json.dumps({"type": "deploy.request", "data": {"deploy_id": "d1", "action": "cancel", "path": self.path}}).encode())
        self.assertEqual(self.final()["state"], "cancelled")
        self.assertEqual(os.listdir(self.roots), [])

    def test_leftovers_of_earlier_unfinished_deploys_to_the_path_are_removed(self):
        for stale in (".demo.dvic-part-old", ".demo.dvic-new-old"):
            with open(os.path.join(self.roots, stale), "wb") as f:
                f.write(b"stale")
        FakeServer(self, self.agent, b"fresh")
        self.request(b"fresh")
        self.assertEqual(self.final()["state"], "done")
        self.assertEqual(os.listdir(self.roots), ["demo"])


if __name__ == "__main__":
    unittest.main()
