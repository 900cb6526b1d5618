"""Side by side, one after the other on the same events: the Python peer worker and
`ember run`, each from produce to the last record acknowledged. Run by Ops/bench-peer.

    bench_peer.py --brokers B --ember BIN --samples DIR [--repeat R] [--model DIR]
                  [--latency] [--only ember|peer] [--taskset CPUS] [--ember-set k=v] [--peer-arg=--opt=v]

Prints, per contender: items/s, CPU utilization of the machine's cores over the
measured window, peak RSS, p50/p95 latency from produce to record; then the ratio
ember/peer and the cosine between the two vectors of every item (the comparison is
honest only when both embed the same way: min cosine ≥ 0.99).
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import time
import uuid

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def events_for(samples, repeat):
    base = [json.loads(line) for line in open(os.path.join(samples, "events.jsonl"))]
    events = []
    for r in range(repeat):
        for e in base:
            e = dict(e)
            e["item_id"] = f"{e['item_id']}-r{r}"
            events.append(e)
    return events


def wait_for_line(log_path, needle, proc, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"worker exited early; see {log_path}")
        if needle in open(log_path, errors="replace").read():
            return
        time.sleep(0.2)
    sys.exit(f"'{needle}' not seen in {log_path} within {seconds} s")


def run_one(name, args, events, rate=None):
    """Starts the contender, produces the events (all at once, or at `rate` per second),
    reads its output until every item is there; returns the figures and the vectors."""
    run = uuid.uuid4().hex[:6]
    topic_in, topic_out, topic_dlq = f"bench.{name}.{run}.in", f"bench.{name}.{run}.out", f"bench.{name}.{run}.dlq"
    admin = AdminClient({"bootstrap.servers": args.brokers})
    for f in admin.create_topics([NewTopic(t, num_partitions=6, replication_factor=1) for t in (topic_in, topic_out, topic_dlq)]).values():
        f.result()
    log_path = os.path.join(args.state, f"bench-peer-{name}-{run}.log")
    log = open(log_path, "w")
    env = dict(os.environ)
    prefix = ["taskset", "-c", args.taskset] if args.taskset else []
    media_root = os.path.join(args.samples, "media")
    if name == "peer":
        command = prefix + [sys.executable, os.path.join(HERE, "peer_worker.py"), "--brokers", args.brokers,
                            "--group", f"peer-{run}", "--input", topic_in, "--output", topic_out, "--dlq", topic_dlq,
                            "--model", args.model, "--media-root", media_root] + args.peer_arg
        ready = "peer: assigned"
    else:
        command = prefix + [args.ember, "run", "--set", f"kafka.brokers={args.brokers}", "--set", f"kafka.group_id=ember-{run}",
                            "--set", f"topics.input={topic_in}", "--set", f"topics.output={topic_out}",
                            "--set", f"topics.dead_letter={topic_dlq}", "--set", f"media.root={media_root}",
                            "--set", f"model.directory={args.model}",
                            "--set", "kafka.properties=session.timeout.ms=6000,heartbeat.interval.ms=1000"] + args.ember_set
        ready = "partitions assigned"
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_line(log_path, ready, proc, 180)
        time.sleep(1.0)  # the rest of the assignment settles
        # Manual assignment: a group join would add seconds of latency to every record. A
        # 10 ms fetch wait: with librdkafka's 500 ms, tansu's fetch answers added about
        # 0.2 s to the p50 measured here (0.47 → 0.28 s for Ember at 50% load).
        reader = Consumer({"bootstrap.servers": args.brokers, "group.id": f"reader-{run}", "enable.auto.commit": False,
                           "fetch.wait.max.ms": 10})
        reader.assign([TopicPartition(topic_out, p, OFFSET_BEGINNING) for p in range(6)])
        producer = Producer({"bootstrap.servers": args.brokers, "linger.ms": 5})
        produced_at, seen_at, vectors = {}, {}, {}
        cpu0, t0 = cpu_seconds(proc.pid), time.time()
        for i, e in enumerate(events):
            if rate:
                time.sleep(max(0.0, t0 + i / rate - time.time()))
            produced_at[e["item_id"]] = time.time()
            producer.produce(topic_in, json.dumps(e).encode(), key=e["item_id"].encode())
            producer.poll(0)
            for message in iter(lambda: reader.poll(0), None):
                if not message.error():
                    record = json.loads(message.value())
                    seen_at.setdefault(record["item_id"], time.time())
                    vectors[record["item_id"]] = record
        producer.flush(30)
        deadline = time.time() + args.timeout
        while len(seen_at) < len(events) and time.time() < deadline:
            message = reader.poll(0.05)
            if message is None or message.error():
                if proc.poll() is not None:
                    sys.exit(f"{name} exited early; see {log_path}")
                continue
            record = json.loads(message.value())
            seen_at.setdefault(record["item_id"], time.time())
            vectors[record["item_id"]] = record
        t1 = time.time()
        cpu1 = cpu_seconds(proc.pid)
        peak = peak_rss_mb(proc.pid)
        reader.close()
        if len(seen_at) < len(events):
            sys.exit(f"{name}: {len(seen_at)} of {len(events)} records within {args.timeout} s; see {log_path}")
        last = max(seen_at.values())
        latencies = sorted(seen_at[k] - produced_at[k] for k in seen_at)
        cores = len(args.taskset.split(",")) if args.taskset else os.cpu_count()
        figures = {
            "contender": name, "items": len(events), "seconds": round(last - t0, 2),
            "items_per_s": round(len(events) / (last - t0), 2),
            "cpu_utilization": round((cpu1 - cpu0) / (t1 - t0) / cores, 3), "peak_rss_mb": round(peak),
            # Items per CPU-second of the worker: what it makes of the CPU it got, the
            # figure that survives a machine shared with other jobs (items/s does not).
            "items_per_cpu_s": round(len(events) / max(cpu1 - cpu0, 1e-9), 2),
            "latency_p50_s": round(latencies[len(latencies) // 2], 2),
            "latency_p95_s": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))], 2),
            "offered_rate": rate, "log": log_path}
        return figures, vectors
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def decode(record):
    raw = base64.b64decode(record["embedding"])
    return np.frombuffer(raw, dtype="<f2" if record["dtype"] == "f16" else "<f4").astype(np.float32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--ember", required=True)
    parser.add_argument("--samples", required=True)
    parser.add_argument("--model", default=os.environ.get("EMBER_MODEL_DIR") or os.path.expanduser("~/.cache/ember/models/omni-small"))
    parser.add_argument("--state", default="/tmp")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--taskset", default=None, help="CPU list for both contenders, e.g. 0 (one core)")
    parser.add_argument("--only", choices=["ember", "peer"], default=None)
    parser.add_argument("--latency", action="store_true", help="also offer 50%% and 90%% of each contender's saturation rate")
    parser.add_argument("--ember-set", action="append", default=[], help="extra ember run --set key=value (non-default settings)")
    parser.add_argument("--peer-arg", action="append", default=[],
                        help="extra peer_worker.py argument, e.g. --peer-arg=--max-batch=4 or --peer-arg=--precision=fp32")
    args = parser.parse_args()
    args.ember_set = [x for kv in args.ember_set for x in ("--set", kv)]
    events = events_for(args.samples, args.repeat)
    results, vectors = {}, {}
    for name in ("peer", "ember"):
        if args.only and name != args.only:
            continue
        figures, vectors[name] = run_one(name, args, events)
        results[name] = [figures]
        print(json.dumps(figures), flush=True)
        if args.latency:
            for load in (0.5, 0.9):
                paced, _ = run_one(name, args, events, rate=figures["items_per_s"] * load)
                paced["load"] = load
                results[name].append(paced)
                print(json.dumps(paced), flush=True)
    summary = {}
    if "peer" in results and "ember" in results:
        summary["ratio_items_per_s"] = round(results["ember"][0]["items_per_s"] / results["peer"][0]["items_per_s"], 2)
        summary["ratio_items_per_cpu_s"] = round(results["ember"][0]["items_per_cpu_s"] / results["peer"][0]["items_per_cpu_s"], 2)
        cosines, by_tower = [], {}
        manifest = json.load(open(os.path.join(args.model, "manifest.json")))
        widths = {"text": 384, "vision": 1280, "audio": 384}
        worst = None
        for item_id, record in vectors["ember"].items():
            a, b = decode(record), decode(vectors["peer"][item_id])
            cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
            cosines.append(cosine)
            if worst is None or cosine < worst[1]:
                worst = (item_id, cosine)
            offset = 0
            for name in manifest["fusion"]["order"]:
                x, y = a[offset:offset + widths[name]], b[offset:offset + widths[name]]
                offset += widths[name]
                if np.linalg.norm(x) > 0 and np.linalg.norm(y) > 0:
                    by_tower.setdefault(name, []).append(float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))))
        summary["cosine_by_tower_min"] = {name: round(min(v), 5) for name, v in by_tower.items()}
        summary["worst_item"] = worst[0]
        summary["cosine_min"] = round(min(cosines), 5)
        summary["cosine_mean"] = round(float(np.mean(cosines)), 5)
        summary["items_compared"] = len(cosines)
    print(json.dumps({"summary": summary}), flush=True)
    for name, rows in results.items():
        for r in rows:
            load = f" at {int(r['load'] * 100)}% load" if "load" in r else ""
            print(f"{name:5s}{load}: {r['items_per_s']} items/s, {r['items_per_cpu_s']} items per CPU-second, CPU {r['cpu_utilization'] * 100:.0f}%, "
                  f"peak RSS {r['peak_rss_mb']} MB, latency p50 {r['latency_p50_s']} s p95 {r['latency_p95_s']} s")
    if summary:
        print(f"ember/peer: {summary['ratio_items_per_s']}x items/s, {summary['ratio_items_per_cpu_s']}x items per CPU-second; cosine per item min {summary['cosine_min']} mean {summary['cosine_mean']}")


if __name__ == "__main__":
    main()
