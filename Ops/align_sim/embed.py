"""`Ops/align-sim embed DIR`: DIR/embeddings.jsonl, one Ember output record per item,
made by the release `ember` itself.

--via replay (default): the way a platform embeds its catalogue. The events go to a
fresh topic on a local tansu (started on --port unless --brokers names a running
broker), `ember replay --from 0` embeds them with the worker's own pipeline (both
embedding lanes busy) into an output topic, and `ember inspect --json` reads the
records back. --via embed: one `ember embed` process per item (--jobs at once); no
broker, slower (each process loads the model).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _log(message):
    print(f"align-sim: {message}", file=sys.stderr, flush=True)


def _ember_binary(explicit):
    candidates = [explicit, os.environ.get("EMBER_BINARY"), os.path.join(REPO, ".build", "release", "ember")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    sys.exit("align-sim: no ember binary: pass --ember, set EMBER_BINARY or "
             "`swift build -c release --product ember`")


def _answers(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit(f"align-sim: {' '.join(command[:3])} … failed (exit {result.returncode}):\n"
                 f"{result.stderr.strip()[-3000:]}")
    return result


def _load_events(directory):
    with open(os.path.join(directory, "events.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def _write(directory, records, events, started):
    by_id = {}
    for r in records:
        by_id[r["item_id"]] = r   # at-least-once: the last record of an item wins
    missing = [e["item_id"] for e in events if e["item_id"] not in by_id]
    if missing:
        sys.exit(f"align-sim: {len(missing)} items have no embedding (first: {missing[:5]})")
    path = os.path.join(directory, "embeddings.jsonl")
    with open(path + ".tmp", "w") as f:
        for e in events:
            f.write(json.dumps(by_id[e["item_id"]], sort_keys=True, separators=(",", ":")) + "\n")
    os.replace(path + ".tmp", path)
    elapsed = time.time() - started
    _log(f"{len(events)} items embedded in {elapsed:.1f} s ({len(events) / elapsed:.2f} items/s) -> {path}")


def _via_replay(directory, ember, brokers, port, events):
    started_broker = False
    if brokers is None:
        brokers = f"127.0.0.1:{port}"
        if not _answers("127.0.0.1", port):
            _run([os.path.join(REPO, "Ops", "broker"), "start", "--port", str(port)])
            started_broker = True
    try:
        run_id = f"align-sim-{os.getpid()}-{int(time.time())}"
        topics = {"in": f"{run_id}.uploaded", "out": f"{run_id}.embeddings", "dlq": f"{run_id}.dlq"}
        common = ["--brokers", brokers]
        _run([ember, "produce", *common, "--topic", topics["in"], os.path.join(directory, "events.jsonl")])
        started = time.time()
        _log(f"ember replay of {len(events)} events on {brokers} ({topics['in']} -> {topics['out']})")
        replay = _run([ember, "replay", *common, "--from", "0", "--input-topic", topics["in"],
                       "--output-topic", topics["out"], "--dlq-topic", topics["dlq"],
                       "--set", f"media.root={directory}", "--log-level", "notice"])
        for line in replay.stderr.splitlines()[-3:]:
            _log(f"  {line}")
        inspect = _run([ember, "inspect", *common, "--json", topics["out"]])
        records = []
        for line in inspect.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                if "embedding" in r:
                    records.append(r)
        dead = _run([ember, "inspect", *common, topics["dlq"]]).stdout.strip().splitlines()
        if len(dead) > 1:
            _log(f"dead letters: {dead[:5]}")
        _write(directory, records, events, started)
    finally:
        if started_broker:
            subprocess.run([os.path.join(REPO, "Ops", "broker"), "stop", "--port", str(port)],
                           capture_output=True)


def _via_embed(directory, ember, events, jobs):
    started = time.time()

    def one(e):
        command = [ember, "embed", "--video", e["video_uri"], "--cover", e["cover_uri"],
                   "--title", e["title"], "--tags", ",".join(e["tags"]), "--author", e["author"]]
        r = json.loads(_run(command).stdout)
        # `ember embed` names the item "cli" and has no topic position: fill in what
        # identifies the item.
        r["item_id"] = e["item_id"]
        r["uploaded_at"] = e["uploaded_at"]
        return r

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        records = list(pool.map(one, events))
    _write(directory, records, events, started)


def embed(directory, ember, brokers, port, via, jobs):
    directory = os.path.abspath(directory)
    ember = _ember_binary(ember)
    events = _load_events(directory)
    if via == "replay":
        _via_replay(directory, ember, brokers, port, events)
    else:
        _via_embed(directory, ember, events, jobs)
