"""The PyTorch side of `ember bench fusion`: transformers' Qwen2Model with random weights
of the same shapes, the same item (inputs_embeds of the same length), the same threads.

    qwen2vl_bench.py CONFIG_JSON TOKENS THREADS SECONDS [--bidirectional] [--bf16]

Prints {"ready": true, "rss_mb": …} once built, then answers each line read from stdin with
{"seconds": s}: seconds per forward pass of one item (decoder + final norm + tanh-mean
pooling), timed like the Swift side (median of repeated calls over SECONDS). Set up as a
team would for CPU inference: inference_mode, sdpa attention, fp32 (or bf16 autocast).
"""
import json
import resource
import sys
import time

import torch
from transformers import Qwen2Config, Qwen2Model


def main():
    config, tokens, threads, seconds = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    bidirectional, bf16 = "--bidirectional" in sys.argv, "--bf16" in sys.argv
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = Qwen2Model(Qwen2Config(vocab_size=config["vocab_size"], hidden_size=config["hidden_size"],
                                       intermediate_size=config["intermediate_size"], num_hidden_layers=config["num_hidden_layers"],
                                       num_attention_heads=config["num_attention_heads"],
                                       num_key_value_heads=config["num_key_value_heads"], rms_norm_eps=1e-6,
                                       rope_parameters={"rope_type": "default", "rope_theta": config["rope_theta"]},
                                       attn_implementation="sdpa")).eval()
    x = torch.randn(1, tokens, config["hidden_size"]) * 0.02
    positions = torch.arange(tokens)[None]
    mask = {"full_attention": torch.zeros(1, 1, tokens, tokens)} if bidirectional else None

    def item():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            states = model(inputs_embeds=x, attention_mask=mask, position_ids=positions).last_hidden_state
            return torch.tanh(states.float()).mean(1)

    item()
    print(json.dumps({"ready": True, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
    for _ in sys.stdin:
        times, start = [], time.perf_counter()
        while not times or time.perf_counter() - start < seconds:
            t = time.perf_counter()
            item()
            times.append(time.perf_counter() - t)
        times.sort()
        print(json.dumps({"seconds": times[len(times) // 2],
                          "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


if __name__ == "__main__":
    main()
