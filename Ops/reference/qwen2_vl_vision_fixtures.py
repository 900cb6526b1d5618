"""Makes the Qwen2-VL vision / perceiver / audio-adapter parity fixtures in
Tests/EmberModelTests/Fixtures/qwen2-vl (fixture version FIXTURE_VERSION; bump on layout change).

    ~/.cache/ember/venv/bin/python Ops/reference/qwen2_vl_vision_fixtures.py

Vision: transformers' own Qwen2VisionTransformerPretrainedModel on a tiny random config, fed by
Qwen2VLImageProcessorPil (do_resize=False: the images are already multiples of patch·merge, so
resizing is not in question). Perceiver and audio adapter: Ops/reference/sail_parts.py.
Weights are rounded to fp16 and stored as F16 (half the bytes; the torch models compute in
fp32 with the same rounded values, so the Swift side, which widens F16 exactly, sees the same
numbers). Inputs and expected outputs are fp32. Deterministic (seed 1414).
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLVisionConfig
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VisionTransformerPretrainedModel

sys.path.insert(0, os.path.dirname(__file__))
import sail_parts  # noqa: E402

FIXTURE_VERSION = 1
OUT = os.path.join(os.path.dirname(__file__), "../../Tests/EmberModelTests/Fixtures/qwen2-vl")
VISION = dict(depth=2, embed_dim=32, num_heads=2, hidden_size=64, mlp_ratio=4, hidden_act="quick_gelu",
              in_channels=3, patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
PERCEIVER = dict(hidden_size=64, output_size=48, num_queries=4, depth=2, num_heads=4, mlp_ratio=1,
                 hidden_act="gelu", layer_norm_eps=1e-6)
AUDIO_ADAPTER = dict(input_size=32, intermediate_size=64, output_size=48, hidden_act="gelu")
# Two square keyframes (the FrameBatch path) and one 56×84 image (a non-square grid, 4×6 patches).
IMAGE_SHAPES = [(56, 56), (56, 56), (56, 84)]


def randomize(module):
    """Weights of O(1/sqrt(fan_in)) and non-trivial norms (HF's 0.02 init makes outputs near
    constant, which would make a 1e-4 comparison weak), rounded to fp16."""
    for name, p in module.named_parameters():
        with torch.no_grad():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.endswith("ln_q.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn_like(p))
            elif name.endswith("queries"):
                p.copy_(torch.randn_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)
            p.copy_(p.half().float())


def main():
    torch.manual_seed(1414)
    rng = np.random.default_rng(1414)
    os.makedirs(OUT, exist_ok=True)
    weights, refs = {}, {}

    # Vision tower, fed by the HF image processor.
    config = Qwen2VLVisionConfig(**VISION)
    config._attn_implementation = "eager"
    vision = Qwen2VisionTransformerPretrainedModel(config).eval()
    randomize(vision)
    images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in IMAGE_SHAPES]
    processor = Qwen2VLImageProcessorPil(do_resize=False)
    batch = processor(images=images, return_tensors="pt")
    pixel_values, grid_thw = batch["pixel_values"].float(), batch["image_grid_thw"]
    with torch.no_grad():
        tokens = vision(pixel_values, grid_thw=grid_thw).pooler_output
    for name, p in vision.state_dict().items():
        weights["visual." + name] = p.half()
    for i, image in enumerate(images):
        refs[f"image_{i}"] = torch.from_numpy(image)
    # The processor's layout for the non-square image only (its patches are the last 24 rows).
    last = int(grid_thw[-1].prod())
    refs["pixel_values_2"] = pixel_values[-last:].contiguous()
    refs["image_grid_thw"] = grid_thw.to(torch.int64)
    refs["vision_tokens"] = tokens.contiguous()

    # Perceiver per frame, on the vision tower's tokens.
    perceiver = sail_parts.Perceiver(**PERCEIVER).eval()
    randomize(perceiver)
    for name, p in perceiver.state_dict().items():
        weights["perceiver." + name] = p.half()
    merged = [int(t * h * w) // VISION["spatial_merge_size"] ** 2 for t, h, w in grid_thw.tolist()]
    with torch.no_grad():
        outputs = [perceiver(frame) for frame in tokens.split(merged)]
    refs["perceiver_tokens"] = torch.cat(outputs).contiguous()

    # Audio adapter on three pooled-audio chunk embeddings.
    adapter = sail_parts.audio_adapter(**AUDIO_ADAPTER).eval()
    randomize(adapter)
    for name, p in adapter.state_dict().items():
        weights["audio_adapter." + name] = p.half()
    chunks = torch.randn(3, AUDIO_ADAPTER["input_size"])
    with torch.no_grad():
        refs["audio_chunks"] = chunks
        refs["audio_tokens"] = adapter(chunks).contiguous()

    save_file(weights, os.path.join(OUT, "weights.safetensors"), metadata={"fixture_version": str(FIXTURE_VERSION)})
    save_file(refs, os.path.join(OUT, "reference.safetensors"), metadata={"fixture_version": str(FIXTURE_VERSION)})
    vision_config = {k: v for k, v in config.to_dict().items() if k in VISION or k == "rope_parameters"}
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump({"fixture_version": FIXTURE_VERSION, "vision_config": vision_config,
                   "perceiver_config": PERCEIVER, "audio_adapter_config": AUDIO_ADAPTER}, f, indent=2, sort_keys=True)
        f.write("\n")
    print("vision tokens", tuple(tokens.shape), "perceiver", tuple(refs["perceiver_tokens"].shape),
          "audio", tuple(refs["audio_tokens"].shape))


if __name__ == "__main__":
    main()
