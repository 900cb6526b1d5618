"""Shared parts of Ops/chaos and Ops/soak: a private tansu broker, `ember run` workers,
sample events, reading topics back through `ember inspect`, and /proc sampling.

Standard library only: the scripts run on a fresh CI machine with the system python3.
Everything talks to 127.0.0.1 only, and every wait is bounded.
"""

import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
OPS = os.path.dirname(HERE)

# The classes Ops/samples' bad-events.jsonl must produce, one event each, in order.
BAD_EVENT_CLASSES = [
    "invalid_event", "invalid_event", "no_content", "forbidden_uri", "forbidden_uri",
    "media_unavailable", "media_invalid",
]


def log(message):
    print(f"ember: {message}", flush=True)


class Broker:
    """tansu through Ops/broker (memory storage), with its pid for freezing it."""

    def __init__(self, port, state_dir):
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.pid_file = os.path.join(state_dir, f"tansu-{port}.pid")

    def start(self):
        subprocess.run([os.path.join(OPS, "broker"), "start", "--port", str(self.port)], check=True)

    def stop(self):
        subprocess.run([os.path.join(OPS, "broker"), "stop", "--port", str(self.port)], check=False)

    @property
    def pid(self):
        with open(self.pid_file) as f:
            return int(f.read().strip())

    def freeze(self):
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self):
        os.kill(self.pid, signal.SIGCONT)


@dataclass
class Topics:
    input: str
    output: str
    dead_letter: str
    group: str

    @staticmethod
    def unique(prefix, seed):
        tag = f"{prefix}-{seed}-{os.getpid()}-{int(time.time()) % 100000}"
        return Topics(f"{tag}.in", f"{tag}.out", f"{tag}.dlq", tag)


@dataclass
class Worker:
    """One `ember run` process; its log goes to a file."""

    name: str
    process: subprocess.Popen
    log_path: str
    started_at: float
    # Set when the runner signalled it (so its exit is expected).
    signalled: str = ""
    exit_code: int = None

    @property
    def pid(self):
        return self.process.pid

    def running(self):
        return self.process.poll() is None

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def send(self, sig, label):
        self.signalled = self.signalled or label
        try:
            os.kill(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, seconds):
        try:
            self.exit_code = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def has_partitions(self):
        return "partitions assigned" in self.log_text()


def start_worker(ember, broker, topics, media_root, name, log_dir, settings):
    log_path = os.path.join(log_dir, f"{name}.log")
    arguments = [
        ember, "run", "--brokers", broker.address, "--group-id", topics.group,
        "--input-topic", topics.input, "--output-topic", topics.output, "--dlq-topic", topics.dead_letter,
        "--set", f"media.root={media_root}",
    ]
    for setting in settings:
        arguments += ["--set", setting]
    out = open(log_path, "wb")
    process = subprocess.Popen(arguments, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    out.close()
    return Worker(name, process, log_path, time.time())


def sample_events(samples_dir, count, prefix):
    """`count` upload events with distinct item ids over the generated clips, and the bad events."""
    with open(os.path.join(samples_dir, "events.jsonl")) as f:
        clips = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(samples_dir, "bad-events.jsonl")) as f:
        bad = [line.rstrip("\n") for line in f if line.strip()]
    events = []
    for i in range(count):
        event = dict(clips[i % len(clips)])
        event["item_id"] = f"{prefix}-{i}"
        events.append(json.dumps(event, separators=(",", ":")))
    return events, bad


def produce(ember, broker, topic, lines, timeout=60):
    """Sends lines through `ember produce`; returns how many were acknowledged."""
    try:
        result = subprocess.run(
            [ember, "produce", "--brokers", broker.address, "--topic", topic],
            input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 0
    match = re.search(r"sent (\d+) of (\d+)", result.stdout)
    return int(match.group(1)) if match else 0


def read_topic(ember, broker, topic, as_json, timeout=120):
    """Every record of `topic` from its beginning to its end, as `ember inspect` lines
    (the summary line dropped). None when the read did not finish in time."""
    arguments = [ember, "inspect", "--brokers", broker.address, topic] + (["--json"] if as_json else [])
    try:
        result = subprocess.run(arguments, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        return None
    lines = result.stdout.splitlines()
    return lines[:-1] if lines and lines[-1].startswith(f"{topic}:") else lines


def output_records(ember, broker, topic):
    lines = read_topic(ember, broker, topic, as_json=True)
    if lines is None:
        return None
    return [json.loads(line) for line in lines if line.startswith("{")]


def dead_letter_classes(ember, broker, topic):
    """The class of every dead letter, in topic order."""
    lines = read_topic(ember, broker, topic, as_json=False)
    if lines is None:
        return None
    return [m.group(1) for m in (re.search(r" dead letter ([a-z_]+):", line) for line in lines) if m]


def iso_seconds(text):
    """Unix time of an ISO-8601 UTC timestamp as the records carry it ("…T10:00:00Z")."""
    return time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone


def partition_events(workers):
    """(time, worker, "assigned" | "revoked", partitions) from the workers' logs, in time
    order (whole seconds, as swift-log prints them); a loss is logged as a revoke too."""
    events = []
    pattern = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\+0000 .* partitions=(\[.*\]) \[EmberPipeline\] partitions (assigned|revoked)$")
    for worker in workers:
        for line in worker.log_text().splitlines():
            match = pattern.match(line)
            if match:
                parts = [int(p) for p in re.findall(r"\[(\d+)\]", match.group(2))]
                events.append((iso_seconds(match.group(1)), worker.name, match.group(3), parts))
    events.sort(key=lambda e: e[0])
    return events


def owned_partitions(worker):
    """The partitions a worker's log says it owns now."""
    owned = set()
    for _, _, kind, parts in partition_events([worker]):
        owned = owned | set(parts) if kind == "assigned" else owned - set(parts)
    return owned


# MARK: /proc


def proc_sample(pid):
    """RSS (MB), open file descriptors and threads of a live process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_mb": rss_kb / 1024.0, "fds": fds, "threads": threads}


def least_squares_slope(xs, ys):
    """Slope of the least-squares line through (xs, ys); 0 for fewer than two points."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


class Background:
    """Runs a function on a daemon thread and remembers its result."""

    def __init__(self, function, *args):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(function, args), daemon=True)
        self.thread.start()

    def _run(self, function, args):
        self.result = function(*args)

    def join(self, seconds):
        self.thread.join(seconds)
        return self.result


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def write_json(path, value):
    if path:
        with open(path, "w") as f:
            json.dump(value, f, indent=2, sort_keys=True)
            f.write("\n")


def settings_value(settings, key, default):
    for setting in settings:
        name, _, value = setting.partition("=")
        if name == key:
            return value
    return default


def kafka_property(settings, name, default):
    properties = settings_value(settings, "kafka.properties", "")
    for pair in properties.split(","):
        key, _, value = pair.partition("=")
        if key.strip() == name:
            return value.strip()
    return default
