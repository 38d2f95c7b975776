"""Serves LOGDIR with a real TensorBoard on loopback and prints the scalars it serves as JSON:
{"tag": [[step, value], ...], ...} for each TAG, read through TensorBoard's HTTP API.

    tensorboard_scalars.py [--load-fast auto|true|false] [--timeout S] LOGDIR TAG [TAG ...]

Waits (bounded) until every tag is served and two reads a second apart agree, then always
stops the server. Exit 1 with one line on stderr on a timeout or a server failure.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.load(response)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--load-fast", default="auto", choices=["auto", "true", "false"])
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument("logdir")
    parser.add_argument("tags", nargs="+")
    args = parser.parse_args()

    log = tempfile.NamedTemporaryFile(prefix="tensorboard-", suffix=".log", delete=False)
    # --port 0: the kernel picks a free port; TensorBoard prints the URL it bound.
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "tensorboard"), "--logdir", args.logdir,
         "--host", "127.0.0.1", "--port", "0", "--reload_interval", "1", "--load_fast", args.load_fast],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + args.timeout
    try:
        port = None
        while port is None:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tensorboard did not start: " + open(log.name).read()[-2000:])
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", open(log.name).read())
            port = int(match.group(1)) if match else None
            time.sleep(0.2)

        previous = None
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError(f"tensorboard served {previous} in {args.timeout}s, not every tag of {args.tags}")
            try:
                runs = get(port, "/data/plugin/scalars/tags")
                current = {}
                for tag in args.tags:
                    if tag in runs.get(".", {}):
                        query = urllib.parse.urlencode({"run": ".", "tag": tag})
                        current[tag] = [[step, value] for _, step, value in get(port, "/data/plugin/scalars/scalars?" + query)]
            except OSError:
                current = None  # not serving yet
            if current is not None and len(current) == len(args.tags) and current == previous:
                print(json.dumps({"port": port, "runs": sorted(runs), "scalars": current}))
                return 0
            previous = current
            time.sleep(1)
    except RuntimeError as error:
        print(f"tensorboard_scalars.py: {error}", file=sys.stderr)
        return 1
    finally:
        # The whole session: with --load_fast the Rust data server is a child of the server.
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        os.unlink(log.name)


if __name__ == "__main__":
    sys.exit(main())
