"""The soak run behind Ops/soak: one `ember run` worker kept saturated (a backlog of
sample items is topped up whenever it runs low) for --duration seconds on a private
tansu broker. Every --interval seconds the worker's RSS, open file descriptors and
threads are read from /proc; at the end the least-squares slope of each (after the
warm-up) is reported and, with --assert, checked against the bounds below.
Prints a table and writes a JSON summary; exits 1 when a check fails.
"""

import argparse
import os
import re
import signal
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import log  # noqa: E402

# Growth the CI variant tolerates after the warm-up, per minute of saturation.
# RSS: after the first minute the worker's RSS wanders within about 30 MB (433–464 MB
# over a measured 30-minute soak, slope −0.25 MB/min), so a 105 s window can show
# +10 MB/min of noise (measured). The bound sits above that: it catches a leaked
# decoded frame (320×240 RGB, 230 KB) per item from 2 items/s on (28 MB/min; a quiet
# 2-core machine does about 12), not a leaked output record (6 KB): that is the
# 30-minute run's job.
BOUNDS_PER_MINUTE = {"rss_mb": 24.0}
# Descriptors and threads are small integers that step (librdkafka opens and closes
# broker connections; Dispatch grows its pool on demand), so a short run bounds their
# spread after the warm-up instead of a slope: one leaked descriptor per item would
# pass 8 within seconds.
BOUNDS_SPREAD = {"fds": 8, "threads": 8}


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ember", required=True)
    parser.add_argument("--samples", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duration", type=float, default=1800, help="seconds at saturation (default 30 min)")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=None, help="seconds left out of the slopes (default min(60, duration/4))")
    parser.add_argument("--backlog", type=int, default=120, help="items kept waiting in the input")
    parser.add_argument("--assert", dest="check", action="store_true", help="fail when a slope or spread exceeds its bound")
    parser.add_argument("--set", dest="settings", action="append", default=[])
    parser.add_argument("--json")
    return parser.parse_args()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def finished_items(metrics_port):
    """Items the worker finished (records + dead letters), from its /metrics; None if unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    total = 0
    for name in ("ember_items_out_total", "ember_dead_letters_total"):
        total += sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M))
    return int(total)


def main():
    args = parse_arguments()
    warmup = args.warmup if args.warmup is not None else min(60.0, args.duration / 4)
    broker = harness.Broker(args.port, args.state)
    topics = harness.Topics.unique("soak", 0)
    log_dir = os.path.join(args.state, f"soak-{topics.group}")
    os.makedirs(log_dir, exist_ok=True)
    metrics_port = free_port()
    settings = [
        "log.metrics_interval_s=30",
        f"metrics.prometheus_port={metrics_port}", "metrics.prometheus_host=127.0.0.1",
        "kafka.properties=session.timeout.ms=6000,heartbeat.interval.ms=1000",
    ] + args.settings
    broker.start()
    samples, produced, worker = [], 0, None
    load_start = harness.load_average()
    try:
        worker = harness.start_worker(args.ember, broker, topics, os.path.join(args.samples, "media"), "soak", log_dir, settings)
        deadline = time.time() + 90
        while not worker.has_partitions() and time.time() < deadline and worker.running():
            time.sleep(0.5)
        if not worker.has_partitions():
            raise SystemExit(f"the worker got no partitions:\n{worker.log_text()[-3000:]}")
        clips, _ = harness.sample_events(args.samples, 8, "clip")
        log(f"soak: {args.duration:.0f} s at saturation, sampling every {args.interval:.0f} s, "
            f"warm-up {warmup:.0f} s, worker pid {worker.pid}, logs in {log_dir}")
        started = time.time()
        next_sample = started
        starved = 0
        checks_of_backlog = 0
        while time.time() - started < args.duration:
            if not worker.running():
                raise SystemExit(f"the worker exited with {worker.process.returncode}:\n{worker.log_text()[-3000:]}")
            done = finished_items(metrics_port)
            if done is not None:
                checks_of_backlog += 1
                if produced > 0 and produced - done <= 0:
                    starved += 1
                if produced - done < args.backlog:
                    batch = [clips[(produced + i) % len(clips)].replace('"item_id":"clip-', f'"item_id":"soak-{produced + i}-', 1)
                             for i in range(args.backlog)]
                    produced += harness.produce(args.ember, broker, topics.input, batch)
            if time.time() >= next_sample:
                sample = harness.proc_sample(worker.pid)
                sample["t"] = round(time.time() - started, 1)
                sample["items"] = done
                samples.append(sample)
                next_sample += args.interval
            time.sleep(1)
        worker.send(signal.SIGTERM, "end")
        exit_code = worker.wait(90)
    finally:
        if worker and worker.running():
            worker.send(signal.SIGKILL, "cleanup")
            worker.wait(10)
        broker.stop()

    steady = [s for s in samples if s["t"] >= warmup]
    report = {"metrics": {}}
    for metric in ("rss_mb", "fds", "threads"):
        xs = [s["t"] / 60 for s in steady]
        ys = [s[metric] for s in steady]
        slope = harness.least_squares_slope(xs, ys)
        report["metrics"][metric] = {
            "first": samples[0][metric] if samples else None,
            "last": samples[-1][metric] if samples else None,
            "min_after_warmup": min(ys) if ys else None,
            "max_after_warmup": max(ys) if ys else None,
            "slope_per_minute": round(slope, 4),
            "slope_per_hour": round(slope * 60, 2),
        }
    items = [s["items"] for s in steady if s["items"] is not None]
    span = (steady[-1]["t"] - steady[0]["t"]) if len(steady) > 1 else 0
    checks = {"worker stopped cleanly": exit_code == 0, "samples after the warm-up": len(steady) >= 3,
              "input never ran dry": starved == 0}
    if args.check:
        for metric, bound in BOUNDS_PER_MINUTE.items():
            checks[f"{metric} slope ≤ {bound}/min"] = report["metrics"][metric]["slope_per_minute"] <= bound
        for metric, bound in BOUNDS_SPREAD.items():
            m = report["metrics"][metric]
            checks[f"{metric} spread ≤ {bound}"] = m["max_after_warmup"] is not None and m["max_after_warmup"] - m["min_after_warmup"] <= bound
    summary = {
        "duration_s": args.duration, "interval_s": args.interval, "warmup_s": warmup,
        "items_finished": samples[-1]["items"] if samples else 0,
        "items_per_s_after_warmup": round((items[-1] - items[0]) / span, 2) if len(items) > 1 and span else None,
        "produced": produced, "load_average_start": load_start, "load_average_end": harness.load_average(),
        "settings": settings, "bounds_per_minute": BOUNDS_PER_MINUTE, "bounds_spread": BOUNDS_SPREAD,
        "samples": samples, "checks": checks, "passed": all(checks.values()), **report,
    }
    path = args.json or os.path.join(args.state, f"soak-{int(args.duration)}s.json")
    harness.write_json(path, summary)
    print(f"soak {args.duration:.0f} s: {summary['items_finished']} items, {summary['items_per_s_after_warmup']} items/s after the "
          f"warm-up, {len(samples)} samples, load average {load_start:.1f} → {summary['load_average_end']:.1f}")
    print("\n| metric | first | last | min–max after warm-up | slope per minute | per hour |\n|---|---|---|---|---|---|")
    for metric, m in report["metrics"].items():
        print(f"| {metric} | {m['first']:.0f} | {m['last']:.0f} | {m['min_after_warmup']:.0f}–{m['max_after_warmup']:.0f} | "
              f"{m['slope_per_minute']:+.3f} | {m['slope_per_hour']:+.1f} |")
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    log(f"summary in {path}")
    sys.exit(0 if summary["passed"] else 1)


if __name__ == "__main__":
    main()
