"""The chaos runner behind Ops/chaos: N sample items through 3 `ember run` workers of one
consumer group on a private tansu broker while faults are injected on a schedule drawn
from --seed, then checks that nothing was lost and that duplicates stay within the bound
the settings allow. Prints a table and writes a JSON summary; exits 1 when a check fails.

Faults (each is one entry of the schedule, at least one of every kind):
  late_start  the third worker joins mid-run (a rebalance with items in flight)
  kill        SIGKILL a worker, start a replacement 1-3 s later
  stop        SIGSTOP a worker past the session timeout, then SIGCONT (its partitions
              are lost and move; it must rejoin, and whatever it finishes late is a duplicate)
  restart     SIGTERM a worker (drain, commit, leave) and start it again: two rebalances
  broker      the broker is unreachable past the session timeout (see README: tansu's
              memory storage cannot survive a restart, so the process is frozen with
              SIGSTOP/SIGCONT instead; clients see timeouts, the group coordinator
              expires every member)
"""

import argparse
import json
import math
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import log  # noqa: E402

PRESETS = {
    # CI: one fault of each required kind; about 90 s with cached samples and binary.
    "short": {"items": 180, "faults": ["late_start", "kill", "stop", "broker"], "extra": 0, "spacing": 11.0},
    # The documented run: every kind, then random extra faults.
    "long": {"items": 1500, "faults": ["late_start", "kill", "stop", "restart", "broker"], "extra": 10, "spacing": 20.0},
}
RANDOM_KINDS = ["kill", "stop", "restart", "broker"]
WORKERS = 3


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ember", required=True, help="the ember binary (release)")
    parser.add_argument("--samples", required=True, help="a directory made by Ops/samples")
    parser.add_argument("--state", required=True, help="directory for worker logs and the summary")
    parser.add_argument("--port", type=int, required=True, help="port of the private broker")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="long")
    parser.add_argument("--seed", type=int, default=None, help="schedule seed (default: from the clock, printed)")
    parser.add_argument("--items", type=int, help="items to send (preset)")
    parser.add_argument("--rate", type=float, help="items per second (default: spread until 10 s after the last fault ends)")
    parser.add_argument("--extra-faults", type=int, help="random faults after the required ones (preset)")
    parser.add_argument("--finish-timeout", type=float, default=240, help="seconds to wait for the last items")
    parser.add_argument("--set", dest="settings", action="append", default=[], help="extra worker setting key=value")
    parser.add_argument("--json", help="write the summary here (default STATE/chaos-SEED.json)")
    return parser.parse_args()


def worker_settings(extra):
    settings = [
        "log.metrics_interval_s=5",
        "pipeline.max_in_flight=16",
        "pipeline.resume_below=8",
        "pipeline.drain_timeout_s=10",
        "kafka.properties=session.timeout.ms=6000,heartbeat.interval.ms=1000",
    ]
    keys = {s.partition("=")[0] for s in extra}
    return [s for s in settings if s.partition("=")[0] not in keys] + extra


def plan(rng, preset, extra_faults, session_s):
    """The fault schedule: kinds, start offsets (s after the first two workers have
    partitions), targets and durations, all drawn from `rng`."""
    kinds = list(preset["faults"])
    rng.shuffle(kinds)
    kinds += [rng.choice(RANDOM_KINDS) for _ in range(extra_faults)]
    spacing = preset["spacing"]
    schedule, at = [], 4.0
    for kind in kinds:
        at += rng.uniform(0, spacing * 0.3)
        entry = {"kind": kind, "at_s": round(at, 1), "target": rng.randrange(WORKERS)}
        if kind in ("stop", "broker"):
            entry["duration_s"] = round(session_s + rng.uniform(1.0, 3.0), 1)
        elif kind == "kill":
            entry["duration_s"] = round(rng.uniform(1.0, 3.0), 1)  # until the replacement starts
        schedule.append(entry)
        at += spacing
    return schedule


class Run:
    def __init__(self, args):
        self.args = args
        preset = PRESETS[args.preset]
        self.items = args.items or preset["items"]
        self.seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
        self.rng = random.Random(self.seed)
        self.settings = worker_settings(args.settings)
        self.session_s = int(harness.kafka_property(self.settings, "session.timeout.ms", "45000")) / 1000
        self.commit_s = int(harness.kafka_property(self.settings, "auto.commit.interval.ms", "5000")) / 1000
        self.window = int(harness.settings_value(self.settings, "pipeline.max_in_flight", "64"))
        extra = args.extra_faults if args.extra_faults is not None else preset["extra"]
        self.schedule = plan(self.rng, preset, extra, self.session_s)
        # Items keep arriving until after the last fault, so every fault meets items in
        # flight (a fast machine would otherwise finish them before the last one).
        last = self.schedule[-1]
        self.rate = args.rate or self.items / (last["at_s"] + last.get("duration_s", 0) + 10)
        self.broker = harness.Broker(args.port, args.state)
        self.topics = harness.Topics.unique("chaos", self.seed)
        # A directory per run: a second run of the same seed must not read the first one's logs.
        self.log_dir = os.path.join(args.state, self.topics.group)
        os.makedirs(self.log_dir, exist_ok=True)
        self.workers = [None] * WORKERS
        self.generation = [0] * WORKERS
        self.retired = []
        self.crashes = []
        self.events = []

    # MARK: workers

    def start(self, slot):
        self.generation[slot] += 1
        name = f"w{slot + 1}.{self.generation[slot]}"
        self.workers[slot] = harness.start_worker(
            self.args.ember, self.broker, self.topics, os.path.join(self.args.samples, "media"), name, self.log_dir, self.settings)
        self.note("start", name)

    def retire(self, slot):
        worker = self.workers[slot]
        self.retired.append(worker)
        self.workers[slot] = None
        return worker

    def check_crashes(self):
        """A worker that exited without being signalled crashed (or stopped on a fatal error)."""
        for slot, worker in enumerate(self.workers):
            if worker and not worker.signalled and not worker.running():
                worker.exit_code = worker.process.returncode
                tail = "\n".join(worker.log_text().splitlines()[-15:])
                self.crashes.append({"worker": worker.name, "exit": worker.exit_code, "log_tail": tail})
                log(f"{worker.name} exited by itself with {worker.exit_code}:\n{tail}")
                self.retire(slot)
                self.start(slot)

    def running_slot(self, preferred):
        """The planned slot when its worker runs and owns partitions, else another that
        does (a fault on a member still joining would disturb nobody), else any running one."""
        slots = [s for s, w in enumerate(self.workers) if w and w.running()]
        owning = [s for s in slots if harness.owned_partitions(self.workers[s])]
        for candidates in (owning, slots):
            if preferred in candidates:
                return preferred
            if candidates:
                return self.rng.choice(candidates)
        return None

    def note(self, what, detail=""):
        self.events.append({"t": round(time.time() - self.t0, 2) if hasattr(self, "t0") else 0, "what": what, "detail": detail})

    def sleep(self, seconds):
        """Sleeps while watching the workers."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.check_crashes()
            time.sleep(min(0.5, max(0.0, deadline - time.time())))

    # MARK: faults

    def inject(self, fault):
        kind, started = fault["kind"], time.time()
        fault["t0"] = started
        if kind == "late_start":
            slot = self.workers.index(None) if None in self.workers else None
            if slot is None:
                fault["skipped"] = "all workers running"
                return
            self.start(slot)
            fault["worker"] = self.workers[slot].name
        elif kind == "broker":
            self.broker.freeze()
            self.note("broker frozen")
            self.sleep(fault["duration_s"])
            self.broker.thaw()
            self.note("broker thawed")
        else:
            slot = self.running_slot(fault["target"])
            if slot is None:
                fault["skipped"] = "no running worker"
                return
            worker = self.workers[slot]
            fault["worker"] = worker.name
            if kind == "kill":
                worker.send(signal.SIGKILL, "kill")
                worker.wait(10)
                self.retire(slot)
                self.note("SIGKILL", worker.name)
                self.sleep(fault["duration_s"])
                self.start(slot)
            elif kind == "stop":
                worker.send(signal.SIGSTOP, "stop")
                self.note("SIGSTOP", worker.name)
                self.sleep(fault["duration_s"])
                os.kill(worker.pid, signal.SIGCONT)
                worker.signalled = ""  # it runs on; an exit from here on is its own
                self.note("SIGCONT", worker.name)
            elif kind == "restart":
                worker.send(signal.SIGTERM, "restart")
                self.note("SIGTERM", worker.name)
                code = worker.wait(60)
                fault["exit"] = code
                if code is None:
                    worker.send(signal.SIGKILL, "restart")
                    worker.wait(10)
                    fault["exit"] = "killed after 60 s"
                self.retire(slot)
                self.start(slot)
        fault["t1"] = time.time()

    # MARK: the run

    def produce_loop(self, events):
        """Sends the events at `rate` per second in one-second chunks; returns how many were acknowledged."""
        sent, index, chunk = 0, 0, max(1, round(self.rate))
        next_at = time.time()
        while index < len(events):
            batch = events[index:index + chunk]
            index += len(batch)
            sent += harness.produce(self.args.ember, self.broker, self.topics.input, batch)
            next_at += len(batch) / self.rate
            time.sleep(max(0.0, next_at - time.time()))
        return sent

    def run(self):
        args = self.args
        good, bad = harness.sample_events(args.samples, self.items, f"chaos-{self.seed}")
        log(f"chaos seed {self.seed}: {len(good)} items + {len(bad)} bad events, {WORKERS} workers, "
            f"{len(self.schedule)} faults, group {self.topics.group}, logs in {self.log_dir}")
        for fault in self.schedule:
            log(f"  planned: +{fault['at_s']:6.1f} s {fault['kind']:<10} worker slot {fault['target'] + 1}"
                + (f" for {fault['duration_s']} s" if "duration_s" in fault else ""))
        self.broker.start()
        self.t0 = time.time()
        load_start = harness.load_average()
        try:
            # The first worker creates the topics (topics.create_partitions, 6).
            self.start(0)
            if not self.wait_until(90, lambda: self.workers[0].has_partitions()):
                raise SystemExit(f"w1 got no partitions in 90 s:\n{self.workers[0].log_text()[-3000:]}")
            self.start(1)
            # Bad events first: dead letters are checked by class at the end.
            harness.produce(args.ember, self.broker, self.topics.input, bad)
            producer = harness.Background(self.produce_loop, good)
            self.wait_until(60, lambda: self.workers[1].has_partitions())
            faults_start = time.time()
            for fault in self.schedule:
                self.sleep(max(0.0, faults_start + fault["at_s"] - time.time()))
                log(f"+{time.time() - self.t0:6.1f} s {fault['kind']} {fault.get('target', 0) + 1}")
                self.inject(fault)
            if None in self.workers:  # late_start skipped or a slot left empty: fill it
                self.start(self.workers.index(None))
            sent = producer.join(600)
            self.note("production done", str(sent))
            expected = set(json.loads(e)["item_id"] for e in good)
            finished = self.wait_until(args.finish_timeout, lambda: self.all_out(expected), step=3)
            self.note("all items out" if finished else "finish timeout")
            for worker in self.workers:
                if worker:
                    worker.send(signal.SIGTERM, "end")
            exits = {w.name: w.wait(60) for w in self.workers if w}
            records = harness.output_records(args.ember, self.broker, self.topics.output) or []
            letters = harness.dead_letter_classes(args.ember, self.broker, self.topics.dead_letter) or []
            inputs = harness.read_topic(args.ember, self.broker, self.topics.input, as_json=True) or []
        finally:
            for worker in self.workers + self.retired:
                if worker and worker.running():
                    try:
                        os.kill(worker.pid, signal.SIGCONT)
                    except ProcessLookupError:
                        pass
                    worker.send(signal.SIGKILL, "cleanup")
                    worker.wait(10)
            try:
                self.broker.thaw()
            except (OSError, ValueError):
                pass
            self.broker.stop()
        return self.summarize(good, bad, inputs, records, letters, exits, sent, load_start)

    def wait_until(self, seconds, condition, step=0.5):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if condition():
                return True
            self.sleep(step)
        return condition()

    def all_out(self, expected):
        records = harness.output_records(self.args.ember, self.broker, self.topics.output)
        letters = harness.dead_letter_classes(self.args.ember, self.broker, self.topics.dead_letter)
        if records is None or letters is None:
            return False
        return expected <= {r["item_id"] for r in records} and len(letters) >= len(harness.BAD_EVENT_CLASSES)

    # MARK: the report

    def summarize(self, good, bad, inputs, records, letters, exits, sent, load_start):
        produced_ids = []
        for line in inputs:
            try:
                produced_ids.append(json.loads(line).get("item_id"))
            except (ValueError, AttributeError):
                pass
        good_ids = set(json.loads(e)["item_id"] for e in good)
        in_input = [i for i in produced_ids if i in good_ids]
        input_copies = len(in_input) - len(set(in_input))
        out_ids = [r["item_id"] for r in records]
        lost = sorted(good_ids - set(out_ids))
        duplicates = len(out_ids) - len(set(out_ids)) - input_copies

        # The bound: each member a fault disturbs may leave its in-flight window
        # (pipeline.max_in_flight) plus what it acknowledged since its last commit
        # (auto.commit.interval.ms × its rate) to be processed again. The rate is
        # bounded by the group's peak over any commit interval, measured from the records.
        times = sorted(harness.iso_seconds(r["embedded_at"]) for r in records)
        peak = 0
        j = 0
        for i, t in enumerate(times):
            while times[j] < t - self.commit_s:
                j += 1
            peak = max(peak, i - j + 1)
        per_member = self.window + peak
        disturbed = 0
        for fault in self.schedule:
            if fault.get("skipped"):
                continue
            # A join moves partitions away from the members already there (2); a broker
            # outage disturbs every member; the others disturb the one worker.
            fault["members_disturbed"] = {"late_start": WORKERS - 1, "broker": WORKERS}.get(fault["kind"], 1)
            disturbed += fault["members_disturbed"]
        bound = disturbed * per_member

        ownership = harness.partition_events(self.retired + [w for w in self.workers if w])
        first_output = sorted(harness.iso_seconds(r["embedded_at"]) for r in records)
        for fault in self.schedule:
            if "t0" in fault and not fault.get("skipped"):
                t0, t1 = fault["t0"], fault["t1"]
                fault["at_s"] = round(t0 - self.t0, 1)
                fault["reassigned_s"] = reassigned_after(fault, ownership)
                # Records carry whole seconds: the first one stamped after the fault ended.
                later = [t for t in first_output if t >= math.floor(t1) + 1]
                fault["output_resumed_s"] = round(later[0] - t1, 1) if later else None
            for key in ("t0", "t1"):
                fault.pop(key, None)

        # Records per partition per 10 s after the start: shows a partition waiting.
        buckets = {}
        for r in records:
            p = (r.get("source") or {}).get("partition")
            bucket = int((harness.iso_seconds(r["embedded_at"]) - self.t0) // 10)
            buckets.setdefault(str(p), {}).setdefault(bucket, 0)
            buckets[str(p)][bucket] += 1
        partition_timeline = {p: [counts.get(b, 0) for b in range(max(counts) + 1)] for p, counts in sorted(buckets.items())}
        # The longest a partition produced nothing between its first and last record.
        idle = {}
        for r in records:
            p = str((r.get("source") or {}).get("partition"))
            idle.setdefault(p, []).append(harness.iso_seconds(r["embedded_at"]))
        longest_idle = {p: max((b - a for a, b in zip(sorted(v), sorted(v)[1:])), default=0) for p, v in idle.items()}

        expected_classes = {}
        for c in harness.BAD_EVENT_CLASSES:
            expected_classes[c] = expected_classes.get(c, 0) + 1
        letter_classes = {}
        for c in letters:
            letter_classes[c] = letter_classes.get(c, 0) + 1
        letters_ok = all(letter_classes.get(c, 0) >= n for c, n in expected_classes.items()) and set(letter_classes) <= set(expected_classes)
        bad_exits = {name: code for name, code in exits.items() if code != 0}

        checks = {
            "no item lost": not lost,
            "duplicates within the bound": duplicates <= bound,
            "dead letters by class as expected": letters_ok,
            "no worker crashed": not self.crashes,
            "every worker stopped cleanly at the end": not bad_exits,
            "every item acknowledged by the broker when produced": sent == len(good),
        }
        return {
            "seed": self.seed,
            "preset": self.args.preset,
            "items": len(good),
            "bad_events": len(bad),
            "workers": WORKERS,
            "rate_per_s": round(self.rate, 2),
            "settings": self.settings,
            "wall_s": round(time.time() - self.t0, 1),
            "started_at": round(self.t0, 1),
            "load_average_start": load_start,
            "load_average_end": harness.load_average(),
            "records": len(out_ids),
            "lost": len(lost),
            "lost_items": lost[:20],
            "duplicates": duplicates,
            "input_duplicates": input_copies,
            "duplicate_bound": bound,
            "duplicate_bound_terms": {
                "pipeline.max_in_flight": self.window, "auto.commit.interval.s": self.commit_s,
                "peak_items_per_commit_interval": peak, "members_disturbed": disturbed,
            },
            "dead_letters": letter_classes,
            "dead_letters_expected": expected_classes,
            "faults": self.schedule,
            "crashes": self.crashes,
            "exit_codes": exits,
            "timeline": self.events,
            "records_per_partition_per_10s": partition_timeline,
            "longest_partition_idle_s": longest_idle,
            "checks": checks,
            "passed": all(checks.values()),
        }


def dash(value):
    return "—" if value is None else value


def reassigned_after(fault, ownership):
    """Seconds from the fault until every partition it took away was assigned again,
    from the workers' `partitions assigned` log lines (whole seconds); None when no
    partition had to move (a fault that disturbed nobody)."""
    t0 = fault["t0"]
    worker = fault.get("worker")
    if fault["kind"] == "late_start":
        # The rebalance is done when the new member gets partitions.
        times = [t for t, w, kind, parts in ownership if w == worker and kind == "assigned" and parts and t >= math.floor(t0)]
        return round(times[0] - t0, 1) if times else None
    owned = {}
    for t, w, kind, parts in ownership:
        if t > t0:
            break
        for p in parts:
            if kind == "assigned":
                owned[p] = w
            elif owned.get(p) == w:
                del owned[p]
    moving = {p for p, w in owned.items() if fault["kind"] == "broker" or w == worker}
    if not moving:
        return None
    waiting, done_at = set(moving), None
    for t, w, kind, parts in ownership:
        # Assignments logged in the fault's first second may predate it.
        if t < math.floor(t0) + 1 or kind != "assigned":
            continue
        waiting -= set(parts)
        if not waiting:
            done_at = t
            break
    return round(done_at - t0, 1) if done_at is not None else None


def table(summary):
    lines = [
        f"chaos seed {summary['seed']} ({summary['preset']}): {summary['items']} items + {summary['bad_events']} bad events, "
        f"{summary['workers']} workers, {summary['wall_s']} s, load average {summary['load_average_start']:.1f} → {summary['load_average_end']:.1f}",
        "",
        "| fault | at s | worker | lasted s | its partitions assigned again after s | output resumed after s |",
        "|---|---|---|---|---|---|",
    ]
    for f in summary["faults"]:
        if f.get("skipped"):
            lines.append(f"| {f['kind']} | — | — | — | skipped: {f['skipped']} | — |")
            continue
        lines.append(f"| {f['kind']} | {f['at_s']} | {f.get('worker', 'broker')} | {f.get('duration_s', '—')} | "
                     f"{dash(f.get('reassigned_s'))} | {dash(f.get('output_resumed_s'))} |")
    terms = summary["duplicate_bound_terms"]
    lines += [
        "",
        f"records {summary['records']}, lost {summary['lost']}, duplicates {summary['duplicates']} "
        f"(bound {summary['duplicate_bound']} = {terms['members_disturbed']} disturbed members × "
        f"({terms['pipeline.max_in_flight']} in flight + {terms['peak_items_per_commit_interval']} acknowledged per "
        f"{terms['auto.commit.interval.s']:g} s commit interval))",
        "dead letters: " + ", ".join(f"{c} {n}" for c, n in sorted(summary["dead_letters"].items())),
        "crashes: " + (", ".join(c["worker"] for c in summary["crashes"]) or "none"),
        "longest a partition produced nothing (s): " + ", ".join(
            f"{p}: {v:.0f}" for p, v in sorted(summary["longest_partition_idle_s"].items())),
    ]
    for name, ok in summary["checks"].items():
        lines.append(f"  {'ok  ' if ok else 'FAIL'} {name}")
    return "\n".join(lines)


def main():
    args = parse_arguments()
    run = Run(args)
    summary = run.run()
    path = args.json or os.path.join(args.state, f"chaos-{summary['seed']}.json")
    harness.write_json(path, summary)
    print(table(summary))
    log(f"summary in {path}")
    sys.exit(0 if summary["passed"] else 1)


if __name__ == "__main__":
    main()
