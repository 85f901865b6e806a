#!/usr/bin/env python3
"""sluice-hash against coreutils' sha256sum on a generated tree.

usage: hash_test.py PATH_TO_SLUICE_HASH

Every comparison is byte for byte with what sha256sum prints for the same
paths in the same order (its program name swapped for ours in errors). The
main comparisons run twice: on io_uring and with SLUICE_DISABLE_IO_URING=1.
"""
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile

HASH = os.path.abspath(sys.argv[1])
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(args, stdin=None, env=None, as_nobody=False):
    prefix = []
    if as_nobody:
        prefix = [shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run(prefix + args, input=stdin, capture_output=True, env=env, timeout=240)


def without_fallback_warning(stderr):
    """stderr less sluice's one warning that io_uring is refused (a seccomp
    profile in CI, say), and how many of those there were."""
    lines = stderr.splitlines(keepends=True)
    kept = [line for line in lines if b"[sluice] [warning] io_uring is unavailable" not in line]
    return b"".join(kept), len(lines) - len(kept)


def sluice_hash(args, **kw):
    r = run([HASH] + args, **kw)
    r.stderr, warnings = without_fallback_warning(r.stderr)
    if warnings > 1:
        check(False, f"one warning about io_uring at most, got {warnings} for {args[:3]}")
    return r


def sha256sum(args, **kw):
    r = run(["sha256sum"] + args, **kw)
    r.stderr = r.stderr.replace(b"sha256sum: ", b"sluice-hash: ")
    return r


def paths_of(output):
    """The paths of sha256sum-format lines, unescaped."""
    paths = []
    for line in output.split(b"\n")[:-1]:
        if line.startswith(b"\\"):
            name = line[67:]
            out, i = bytearray(), 0
            while i < len(name):
                if name[i:i + 1] == b"\\":
                    out += {b"\\": b"\\", b"n": b"\n", b"r": b"\r"}[name[i + 1:i + 2]]
                    i += 2
                else:
                    out += name[i:i + 1]
                    i += 1
            paths.append(bytes(out))
        else:
            paths.append(line[66:])
    return paths


def sorted_walk(top):
    """Regular files under `top`, depth first, each directory's entries in byte order."""
    out = []
    for name in sorted(os.listdir(top)):
        path = os.path.join(top, name)
        if os.path.isdir(path) and not os.path.islink(path):
            out += sorted_walk(path)
        elif os.path.isfile(path):
            out.append(path)
    return out


def build_tree(root):
    os.makedirs(os.path.join(root, b"nested/deeper/deepest"))
    files = {
        b"empty": b"",
        b"one": b"x",
        b"three-mib": os.urandom(3 << 20),
        b"with space.txt": b"spaced\n",
        b"back\\slash": b"backslash\n",
        b"new\nline": b"newline\n",
        b"nested/a.txt": b"a\n",
        b"nested/deeper/deepest/z.bin": os.urandom(70000),
    }
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    # 100 MB from a repeated random MiB: fast to write, and no two MiB-aligned
    # reads are at the same offset, so misplaced chunks still change the hash.
    block = os.urandom(1 << 20)
    with open(os.path.join(root, b"hundred-mb"), "wb") as f:
        for i in range(100):
            f.write(block[i:] + block[:i])
    os.makedirs(os.path.join(root, b"many"))
    for i in range(300):
        with open(os.path.join(root, b"many/f%03d" % i), "wb") as f:
            f.write(os.urandom(i * 37))
    os.mkfifo(os.path.join(root, b"fifo"))  # skipped by the walk, never opened


def main_checks(label, env):
    listed = [b"one", b"empty", b"three-mib", b"with space.txt", b"back\\slash", b"new\nline",
              b"nested/deeper/deepest/z.bin", b"hundred-mb"] + [b"many/f%03d" % i
                                                                for i in range(0, 300, 7)]
    want = sha256sum(listed)
    check(want.returncode == 0, f"{label}: sha256sum itself succeeds")

    got = sluice_hash(listed, env=env)
    check(got.returncode == 0, f"{label}: exit 0 for readable files (got {got.returncode})")
    check(got.stdout == want.stdout, f"{label}: paths as arguments: output identical to sha256sum")
    check(got.stderr == b"", f"{label}: nothing on stderr when it is not a terminal")

    listing = b"\n".join(p for p in listed if b"\n" not in p) + b"\n"
    plain = [p for p in listed if b"\n" not in p]
    want_plain = sha256sum(plain)
    with open("../list.txt", "wb") as f:  # outside the tree that is walked below
        f.write(listing)
    got = sluice_hash(["--files-from", "../list.txt"], env=env)
    check(got.stdout == want_plain.stdout, f"{label}: --files-from: identical to sha256sum")
    got = sluice_hash(["-"], stdin=listing, env=env)
    check(got.stdout == want_plain.stdout, f"{label}: '-' (list on stdin): identical to sha256sum")
    for conc, pending in (("1", "1"), ("3", "5"), ("64", "64")):
        got = sluice_hash(["--concurrency", conc, "--max-pending", pending] + listed, env=env)
        check(got.stdout == want.stdout,
              f"{label}: --concurrency {conc} --max-pending {pending}: same output, same order")

    walk = sluice_hash(["."], env=env)
    check(walk.returncode == 0, f"{label}: walking the tree exits 0 (got {walk.returncode})")
    walked = paths_of(walk.stdout)
    check(walked == sorted_walk(b"."),
          f"{label}: the walk lists every regular file, depth first, in byte order")
    check(sha256sum(walked).stdout == walk.stdout,
          f"{label}: walk output identical to sha256sum over the same paths")
    check(sluice_hash(["."], env=env).stdout == walk.stdout, f"{label}: the walk is deterministic")
    with open("../SHA256SUMS", "wb") as f:
        f.write(walk.stdout)
    verify = run(["sha256sum", "--strict", "-c", "../SHA256SUMS"])
    check(verify.returncode == 0 and verify.stdout.count(b": OK\n") == len(walked),
          f"{label}: sha256sum -c accepts all {len(walked)} lines")

    with_missing = [b"one", b"missing", b"three-mib", b"no such dir/x", b"one/child", b"empty"]
    want = sha256sum(with_missing)
    got = sluice_hash(with_missing, env=env)
    check(got.returncode == 1, f"{label}: missing paths give exit 1 (got {got.returncode})")
    check(got.stdout == want.stdout, f"{label}: the other files are still hashed, in order")
    check(got.stderr == want.stderr,
          f"{label}: errors worded as sha256sum's: {got.stderr!r} vs {want.stderr!r}")


def unreadable_checks():
    # Root reads anything: then both programs run as nobody, which the tree
    # allows except for the parts made unreadable on purpose.
    as_nobody = os.geteuid() == 0
    if as_nobody and shutil.which("setpriv") is None:
        check(False, "setpriv (util-linux) is needed to test unreadable files as root")
        return
    os.makedirs(b"locked-dir/inner")
    with open(b"locked-dir/inner/x", "wb") as f:
        f.write(b"x")
    with open(b"secret", "wb") as f:
        f.write(b"secret\n")
    os.chmod(b"secret", 0)
    os.chmod(b"locked-dir", 0)
    try:
        paths = [b"one", b"secret", b"empty"]
        want = sha256sum(paths, as_nobody=as_nobody)
        got = sluice_hash(paths, as_nobody=as_nobody)
        check(want.returncode == 1 and b"Permission denied" in want.stderr,
              "sha256sum itself cannot read the unreadable file")
        check(got.returncode == 1, f"unreadable file: exit 1 (got {got.returncode})")
        check(got.stdout == want.stdout, "unreadable file: the others are hashed")
        check(got.stderr == want.stderr, f"unreadable file: {got.stderr!r} vs {want.stderr!r}")

        walk = sluice_hash(["--concurrency", "2", "."], as_nobody=as_nobody)
        check(walk.returncode == 1, f"unreadable directory in a walk: exit 1 (got {walk.returncode})")
        check(b"sluice-hash: ./locked-dir: Permission denied\n" in walk.stderr
              and b"sluice-hash: ./secret: Permission denied\n" in walk.stderr,
              f"unreadable directory and file reported: {walk.stderr!r}")
        check(b"  ./hundred-mb\n" in walk.stdout and b"  ./nested/a.txt\n" in walk.stdout,
              "the rest of the tree is still hashed")
    finally:
        os.chmod(b"secret", 0o644)
        os.chmod(b"locked-dir", 0o755)


def usage_checks():
    r = sluice_hash(["--help"])
    check(r.returncode == 0 and r.stdout.startswith(b"usage: sluice-hash"), "--help: usage, exit 0")
    for bad in (["--bogus"], ["--concurrency", "0", "one"], ["--concurrency"],
                ["--concurrency", "8", "--max-pending", "4", "one"], ["--threads", "x", "one"],
                ["--files-from", "no-such-list"]):
        r = sluice_hash(bad)
        check(r.returncode == 2 and r.stdout == b"" and r.stderr.startswith(b"sluice-hash: "),
              f"{bad}: exit 2 with a message ({r.stderr!r})")


def read_pty(fd, proc):
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    return data


def progress_checks():
    for args, want_progress in ((["hundred-mb", "many"], True),
                                (["--quiet", "hundred-mb", "many"], False)):
        leader, follower = pty.openpty()
        proc = subprocess.Popen([HASH] + args, stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        out = proc.stdout.read()
        err, _ = without_fallback_warning(read_pty(leader, proc).replace(b"\r\n", b"\n"))
        os.close(leader)
        shown = b"files" in err and b"MB/s" in err and err.endswith(b"\r\x1b[K")
        check(proc.returncode == 0 and out.count(b"\n") == 301,
              f"{args}: all lines on stdout with stderr on a terminal")
        if want_progress:
            check(shown, f"progress on a terminal, erased at the end ({err[-80:]!r})")
        else:
            check(err == b"", f"--quiet: nothing on the terminal ({err[-80:]!r})")


os.umask(0o022)  # the tree must be readable by nobody, but for what is locked on purpose
with tempfile.TemporaryDirectory() as tmp:
    root = os.path.join(os.fsencode(tmp), b"tree")
    build_tree(root)
    os.chmod(tmp, 0o755)  # setpriv's nobody must reach the tree
    os.chdir(root)
    main_checks("io_uring", None)
    main_checks("fallback", dict(os.environ, SLUICE_DISABLE_IO_URING="1"))
    unreadable_checks()
    usage_checks()
    progress_checks()
    os.chdir("/")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
