#!/usr/bin/env python3
"""sluice-fetch against a Python HTTP server: results, errors, and SIGTERM.

usage: fetch_test.py PATH_TO_SLUICE_FETCH
"""
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

FETCH = os.path.abspath(sys.argv[1])
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow/"):
            time.sleep(30)  # only a cancelled client gets past this
        return super().do_GET()

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops SYNs under concurrency
    daemon_threads = True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


with tempfile.TemporaryDirectory() as root:
    for i in range(20):
        with open(os.path.join(root, f"f{i}"), "wb") as f:
            f.write(b"x" * (i * 1000))
    os.chdir(root)
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    closed = f"http://127.0.0.1:{free_port()}/nothing-listens-here"

    # 1. Every URL gets one line; 404, refused and malformed are results.
    urls = [f"{base}/f{i}" for i in range(20)] + [f"{base}/missing", closed, "ht!tp:/bad url"]
    with open("urls.txt", "w") as f:
        f.write("\n".join(urls) + "\n")
    run = subprocess.run([FETCH, "--concurrency", "8", "--retries", "1", "--output", "out.jsonl",
                          "urls.txt"], capture_output=True, text=True, timeout=120)
    check(run.returncode == 1, f"exit 1 when some URLs fail (got {run.returncode})")
    lines = read_lines("out.jsonl")
    check(len(lines) == len(urls), f"one line per URL ({len(lines)} of {len(urls)})")
    by_url = {line["url"]: line for line in lines}
    check(all(by_url[f"{base}/f{i}"]["status"] == 200 and by_url[f"{base}/f{i}"]["bytes"] == i * 1000
              for i in range(20)), "200s with the right sizes")
    check(by_url[f"{base}/missing"]["status"] == 404, "404 reported as a status")
    check(by_url[closed]["error"] is not None and by_url[closed]["attempts"] == 2,
          "refused connection is an error, retried once")
    check(by_url["ht!tp:/bad url"]["error"] is not None, "malformed URL is an error")
    check(sorted(line["index"] for line in lines) == list(range(len(urls))), "indices complete")
    check("23 URLs" in run.stderr, "summary on stderr")

    # 1b. Spread over three reactor threads (one multi handle each): the same results.
    lanes = subprocess.run([FETCH, "--concurrency", "8", "--retries", "1", "--io-threads", "3",
                            "--output", "lanes.jsonl", "urls.txt"],
                           capture_output=True, text=True, timeout=120)
    check(lanes.returncode == 1, f"--io-threads 3: exit 1 (got {lanes.returncode})")
    lane_by_url = {line["url"]: line for line in read_lines("lanes.jsonl")}
    check(sorted(lane_by_url) == sorted(by_url) and
          all((lane_by_url[u]["status"], lane_by_url[u]["bytes"], lane_by_url[u]["error"] is None) ==
              (by_url[u]["status"], by_url[u]["bytes"], by_url[u]["error"] is None) for u in by_url),
          "--io-threads 3: every URL with the same status, size and error")
    # 1c. A connect that times out, then ordinary transfers on the next
    # sockets (which reuse its descriptor number). libcurl before 8.2 closes
    # a socket whose connect did not complete without the close callback:
    # nothing of the timed-out socket may be left to hinder the next ones.
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(0)
    fillers = []
    for _ in range(8):  # fill the accept queue: later SYNs are dropped
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(hang.getsockname())
        fillers.append(c)
    time.sleep(0.2)
    hang_url = f"http://127.0.0.1:{hang.getsockname()[1]}/never"
    after = [hang_url] + [f"{base}/f{i}" for i in range(1, 6)] + [hang_url] + \
        [f"http://localhost:{server.server_address[1]}/f{i}" for i in range(1, 6)]
    with open("after.txt", "w") as f:
        f.write("\n".join(after) + "\n")
    started = time.monotonic()
    run_after = subprocess.run([FETCH, "--concurrency", "1", "--timeout", "1000", "--output",
                                "after.jsonl", "after.txt"],
                               capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    after_lines = sorted(read_lines("after.jsonl"), key=lambda line: line["index"])
    check(len(after_lines) == len(after), f"connect timeout: one line per URL ({len(after_lines)})")
    check(after_lines[0]["error"] is not None and after_lines[6]["error"] is not None,
          "connect timeout: reported as an error")
    ok_after = [line for line in after_lines if line["url"] != hang_url]
    check(all(line["status"] == 200 and line["error"] is None for line in ok_after),
          "connect timeout: every transfer after it succeeds: " +
          str([(line["url"], line["status"], line["error"]) for line in ok_after
               if line["status"] != 200 or line["error"] is not None]))
    check(took < 2 * 1.0 + 8 * 0.9, f"connect timeout: no later transfer waits for one ({took:.1f} s)")

    # 1d. The same with eight reactor threads and a connection per request
    # (this server closes after each response): a socket curl closes itself
    # must not take a number another thread's new socket was just given.
    mixed = [hang_url if i % 10 == 0 else f"{base}/f{i % 20}" for i in range(1000)]
    with open("mixed.txt", "w") as f:
        f.write("\n".join(mixed) + "\n")
    run_mixed = subprocess.run([FETCH, "--concurrency", "64", "--io-threads", "8", "--timeout",
                                "1500", "--output", "mixed.jsonl", "mixed.txt"],
                               capture_output=True, text=True, timeout=300)
    mixed_lines = read_lines("mixed.jsonl")
    check(len(mixed_lines) == len(mixed), f"8 reactor threads: one line per URL ({len(mixed_lines)})")
    stuck = [line for line in mixed_lines if line["url"] != hang_url and line["status"] != 200]
    check(not stuck, f"8 reactor threads, connect timeouts among them: every other URL answered "
          f"({len(stuck)} not: {[line['error'] for line in stuck[:3]]})")
    for c in fillers:
        c.close()
    hang.close()

    bad_io = subprocess.run([FETCH, "--io-threads", "0"], capture_output=True, text=True, timeout=30)
    check(bad_io.returncode == 2 and "io-threads" in bad_io.stderr, "--io-threads 0: exit 2")

    big = subprocess.run([FETCH, "--max-pending", "8388608"], capture_output=True, text=True,
                         timeout=30)
    check(big.returncode == 2 and "max-pending" in big.stderr,
          "--max-pending above what a scope counts: exit 2 with a message")
    other = subprocess.run([FETCH, "--quiet", "--retries", "2", "-"],
                           input="file:///etc/hostname\n", capture_output=True, text=True,
                           timeout=30)
    other_line = json.loads(other.stdout.splitlines()[0]) if other.stdout else {}
    check(other.returncode == 1 and other_line.get("error") is not None and
          other_line.get("attempts") == 1, "file:// refused as an error, not retried")
    raw = subprocess.run([FETCH, "--quiet", "-"], input=f"{base}/caf\u00e9\n{base}/\xff\xfe\n"
                         .encode("latin-1", errors="strict").replace(b"caf\xe9", "café".encode()),
                         capture_output=True, timeout=30)
    try:
        raw_lines = [json.loads(line) for line in raw.stdout.decode("utf-8").splitlines()]
    except ValueError:
        raw_lines = []
    check(sorted(line["url"] for line in raw_lines) == sorted([f"{base}/café", f"{base}/\ufffd\ufffd"]),
          "URLs with UTF-8 and with stray bytes: valid JSON lines, U+FFFD for the stray bytes")
    blanks = subprocess.run([FETCH, "--quiet", "-"], input=f"\n  {base}/f1  \n\t\n{base}/f2\r\n\n",
                            capture_output=True, text=True, timeout=30)
    blank_lines = [json.loads(line) for line in blanks.stdout.splitlines()]
    check(blanks.returncode == 0 and sorted((line["index"], line["url"]) for line in blank_lines) ==
          [(0, f"{base}/f1"), (1, f"{base}/f2")], "blank lines and blanks around URLs skipped")
    bad = subprocess.run([FETCH, "--concurrency", "0"], capture_output=True, text=True, timeout=30)
    check(bad.returncode == 2 and "concurrency" in bad.stderr, "bad option: exit 2 with a message")
    helped = subprocess.run([FETCH, "--help"], capture_output=True, text=True, timeout=30)
    check(helped.returncode == 0 and "usage" in helped.stdout, "--help")

    # 2. SIGTERM mid-fetch: stop pulling, cancel after the grace, one line per pulled URL.
    slow = [f"{base}/slow/{i}" for i in range(1000)]
    with open("slow.txt", "w") as f:
        f.write("\n".join(slow) + "\n")
    proc = subprocess.Popen([FETCH, "--concurrency", "8", "--grace", "200", "--quiet",
                             "--output", "slow.jsonl", "slow.txt"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    check(proc.returncode == 128 + signal.SIGTERM, f"exit 143 after SIGTERM (got {proc.returncode})")
    check(took < 10, f"stopped in {took:.2f} s")
    lines = read_lines("slow.jsonl")
    indices = sorted(line["index"] for line in lines)
    check(8 <= len(lines) < 1000, f"{len(lines)} URLs pulled, then pulling stopped")
    check(indices == list(range(len(lines))), "exactly one line per pulled URL")
    check(all(line["url"] == slow[line["index"]] for line in lines), "each line names its URL")
    check(all(line["error"] == "cancelled" for line in lines), "in-flight transfers cancelled")

    # 3. A list on a pipe that stays open: each URL is fetched as its line
    # arrives, and SIGTERM ends the run without waiting for more input.
    proc = subprocess.Popen([FETCH, "--grace", "200", "--quiet", "--output", "pipe.jsonl", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    proc.stdin.write(f"{base}/f1\n{base}/f2\n")
    proc.stdin.flush()
    time.sleep(1.0)  # the pipe stays open: no more lines, no end
    with open("pipe.jsonl") as f:
        before = len(f.readlines())
    check(before == 2, f"open pipe: both lines in the file while the run goes on ({before})")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)  # stdin still open
    except subprocess.TimeoutExpired:
        pass
    took = time.monotonic() - sent
    proc.stdin.close()
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    check(proc.returncode == 128 + signal.SIGTERM and took < 10,
          f"open pipe: SIGTERM ends the run (exit {proc.returncode} after {took:.2f} s)")
    piped = read_lines("pipe.jsonl")
    check(sorted((line["index"], line["url"], line["status"]) for line in piped) ==
          [(0, f"{base}/f1", 200), (1, f"{base}/f2", 200)],
          f"open pipe: both URLs fetched, one line each ({len(piped)} lines)")
    server.shutdown()

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
