"""Throughput of the Qwen2-VL vision tower in transformers on CPU, the reference side of
`Ops/reference/qwen2_vl_vision_bench` (Ember's side). Not a test: figures depend on the load.

    ~/.cache/ember/venv/bin/python Ops/reference/qwen2_vl_vision_bench.py DIR [--size 448] [--frames 1] [--runs 3] [--threads 2]

The first call writes DIR/visual.safetensors (Qwen2-VL-2B's vision_config: depth 32,
embed_dim 1280, 16 heads, hidden_size 1536; random weights, seed 7, about 2.7 GB fp32),
DIR/config.json, DIR/frames.safetensors (normalized keyframes) and DIR/tokens.safetensors
(transformers' output, for Ember's side to compare). Every call prints frames/s and
vision tokens/s (tokens after the 2×2 merge) of the fastest of `runs` timed passes after one
warm-up (the fastest is the least disturbed on a shared machine), and the median.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLVisionConfig
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VisionTransformerPretrainedModel

VISION_2B = dict(depth=32, embed_dim=1280, num_heads=16, hidden_size=1536, mlp_ratio=4, hidden_act="quick_gelu",
                 in_channels=3, patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.dir, exist_ok=True)

    config = Qwen2VLVisionConfig(**VISION_2B)
    config._attn_implementation = "sdpa"
    model = Qwen2VisionTransformerPretrainedModel(config).eval()
    weights_path = os.path.join(args.dir, "visual.safetensors")
    if os.path.exists(weights_path):
        state = load_file(weights_path)
        model.load_state_dict({k.removeprefix("visual."): v for k, v in state.items()})
    else:
        torch.manual_seed(7)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith(("norm1.weight", "norm2.weight", "ln_q.weight")):
                    p.copy_(1 + 0.1 * torch.randn_like(p))
                elif p.dim() == 1:
                    p.copy_(0.02 * torch.randn_like(p))
                else:
                    p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)
        save_file({"visual." + k: v.contiguous() for k, v in model.state_dict().items()}, weights_path)
        with open(os.path.join(args.dir, "config.json"), "w") as f:
            json.dump({k: v for k, v in config.to_dict().items() if k in VISION_2B}, f, indent=2)

    # Keyframes as the worker would hand them over: (N, 3, S, S), CLIP-normalized.
    rng = np.random.default_rng(args.size * 100 + args.frames)
    images = [rng.integers(0, 256, size=(args.size, args.size, 3), dtype=np.uint8) for _ in range(args.frames)]
    frames = np.stack([((im.astype(np.float32) / 255 - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1) for im in images])
    batch = Qwen2VLImageProcessorPil(do_resize=False)(images=images, return_tensors="pt")
    pixel_values, grid_thw = batch["pixel_values"].float(), batch["image_grid_thw"]

    with torch.inference_mode():
        tokens = model(pixel_values, grid_thw=grid_thw).pooler_output  # warm-up
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            model(pixel_values, grid_thw=grid_thw)
            times.append(time.perf_counter() - start)
    seconds, median = min(times), sorted(times)[len(times) // 2]
    tag = f"{args.size}x{args.frames}"
    save_file({"frames": torch.from_numpy(frames).contiguous()}, os.path.join(args.dir, f"frames-{tag}.safetensors"))
    save_file({"tokens": tokens.contiguous()}, os.path.join(args.dir, f"tokens-{tag}.safetensors"))
    print(f"transformers {torch.__version__}, {args.threads} threads: {args.frames} frame(s) of {args.size}²: "
          f"{seconds:.3f} s/pass (fastest of {args.runs}; median {median:.3f}), {args.frames / seconds:.3f} frames/s, "
          f"{tokens.shape[0] / seconds:.1f} vision tokens/s")


if __name__ == "__main__":
    main()
