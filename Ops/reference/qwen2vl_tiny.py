"""Tiny random Qwen2-VL-family embedding models, built offline and seeded with transformers,
saved Hugging Face style, converted by qwen2vl_convert.py, with reference outputs for the
Swift parity tests (Qwen2DecoderTests, VLMFusionTests). Run by `Ops/model-fetch qwen2vl-tiny`.

    ~/.cache/ember/venv/bin/python Ops/reference/qwen2vl_tiny.py TOKENIZER_JSON OUT_ROOT
    ~/.cache/ember/venv/bin/python Ops/reference/qwen2vl_tiny.py --bench-0.5b TOKENIZER_JSON OUT_ROOT   (benchmark model)

TOKENIZER_JSON is Qwen's byte-level BPE (`Ops/model-fetch qwen2-tokenizer`: 151,643 tokens +
added tokens), so the tiny models read real Qwen token ids. Writes:

  OUT_ROOT/qwen2vl-tiny       GME-style: Qwen2VLForConditionalGeneration (causal, multimodal
                              RoPE, vision tokens straight from the merger), last-token pooling
  OUT_ROOT/qwen2vl-tiny-sail  SAIL-style: the same family with bidirectional attention, a perceiver
                              per frame, a Whisper audio tower + adapter, tanh-mean pooling,
                              Matryoshka 64/32/16 (written when sail_parts.py is present)

each with reference.safetensors (metadata: the items' texts, FIXTURE_VERSION) and, in
qwen2vl-tiny/reference/, a bare Qwen2Model (qwen2-decoder.safetensors + .json) for the
plain-RoPE causal decoder test and the GME model's Hugging Face checkpoint (hf/). Every reference runs in fp32.
"""
import json
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import qwen2vl_convert as convert  # noqa: E402

FIXTURE_VERSION = 1
SEED = 20261130
IMAGE_SIZE = 56  # 4 × 4 patches of 14 → 2 × 2 merged tokens per frame
INSTRUCTION = "Represent the user's input."
TEXTS = ["A cat opens the fridge 🐱 猫が冷蔵庫を開ける #pets", "Traffic jam on the highway during the holidays", None]
FRAMES = [2, 0, 1]  # frames per item: text + 2 frames, text only, one frame only


def randomize(model, scale=0.1):
    """Weights large enough that every part moves the output (HF init leaves biases at 0)."""
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name or name.endswith("ln_q.weight") or ".norm1.weight" in name \
                    or ".norm2.weight" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(scale * torch.randn(p.shape, generator=g))


def prompt(frames, tokens_per_frame, text, audio_chunks=0, audio_token="<|vision_pad|>"):
    """The template Ember builds (VLMFusionSequence.swift), as one string."""
    s = f"<|im_start|>system\n{INSTRUCTION}<|im_end|>\n<|im_start|>user\n"
    s += audio_token * audio_chunks
    s += ("<|vision_start|>" + "<|image_pad|>" * tokens_per_frame + "<|vision_end|>") * frames
    s += text or ""
    return s + "<|im_end|>\n<|im_start|>assistant\n<|endoftext|>"


def pad(rows, value=0):
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows]), \
        torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])


def qwen2vl_config(tokenizer, mrope_section, **text):
    """A Qwen2VLConfig with the tiny vision tower (56-pixel frames → 2 × 2 merged tokens of 64)
    and the tokenizer's own ids for the vision tokens; `text` sets the decoder's sizes."""
    from transformers import Qwen2VLConfig
    ids = {t: tokenizer.token_to_id(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    return Qwen2VLConfig(
        text_config=dict(vocab_size=151936, num_key_value_heads=2, rms_norm_eps=1e-6,
                         rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope_section}, **text),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=64, num_heads=4, mlp_ratio=2, patch_size=14, spatial_merge_size=2,
                           temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])


def gme(tokenizer_json, root, refs):
    from tokenizers import Tokenizer
    from transformers import Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor
    tokenizer = Tokenizer.from_file(tokenizer_json)
    config = qwen2vl_config(tokenizer, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                            mrope_section=[2, 3, 3])
    torch.manual_seed(SEED)
    model = Qwen2VLForConditionalGeneration(config).eval()
    randomize(model)
    # Kept as the converter's test input (VLMFusionCLITests runs Ops/convert-qwen2vl on it).
    hf = os.path.join(root, "qwen2vl-tiny", "reference", "hf")
    model.save_pretrained(hf)
    import shutil
    shutil.copyfile(tokenizer_json, os.path.join(hf, "tokenizer.json"))
    out = os.path.join(root, "qwen2vl-tiny")
    convert.convert(hf, out, "qwen2vl-tiny", "causal", "last_token", [64, 32], 64, INSTRUCTION, IMAGE_SIZE,
                    ["vision", "text"], 512)

    # The items: frames are what EmberMedia hands the engine (normalized CHW floats).
    rng = np.random.default_rng(SEED)
    processor = Qwen2VLImageProcessor(do_resize=False, do_rescale=False, do_normalize=False)
    per_frame = (IMAGE_SIZE // 28) ** 2
    ids, images = [], []
    for i, (text, n) in enumerate(zip(TEXTS, FRAMES)):
        frames = rng.standard_normal((n, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
        refs[f"gme.{i}.frames"] = frames
        images += list(frames)
        ids.append(tokenizer.encode(prompt(n, per_frame, text), add_special_tokens=False).ids)
        refs[f"gme.{i}.ids"] = np.array(ids[-1], dtype=np.int64)
    pixels = processor(images=images, return_tensors="pt", input_data_format="channels_first")
    input_ids, mask = pad(ids)
    captured = {}

    def capture(_, args, kwargs):
        captured["embeds"], captured["positions"] = kwargs["inputs_embeds"].clone(), kwargs["position_ids"].clone()

    hook = model.model.language_model.register_forward_pre_hook(capture, with_kwargs=True)
    with torch.no_grad():
        hidden = model.model(input_ids=input_ids, attention_mask=mask, pixel_values=pixels["pixel_values"],
                             image_grid_thw=pixels["image_grid_thw"],
                             mm_token_type_ids=(input_ids == config.image_token_id).int()).last_hidden_state
    hook.remove()
    for i, row in enumerate(ids):
        length = len(row)
        refs[f"gme.{i}.hidden"] = hidden[i, :length].numpy()
        refs[f"gme.{i}.positions"] = captured["positions"][:, i, :length].numpy().astype(np.int64)
        vector = hidden[i, length - 1]
        refs[f"gme.{i}.embedding"] = (vector / vector.norm()).numpy()
        # The decoder alone with multimodal RoPE: its input embeddings (vision scattered in) and positions.
        refs[f"mrope.{i}.embeds"] = captured["embeds"][i, :length].numpy()

    # Bidirectional attention + tanh-mean pooling on the same decoder: the SAIL recipe, as a
    # short reference of our own (transformers has no switch for it): the layers of
    # Qwen2VLTextModel under an explicit 4-D mask that hides only another sequence's padding.
    lengths = [6, 11]
    embeds = torch.from_numpy(rng.standard_normal((2, max(lengths), 64)).astype(np.float32))
    key_mask = torch.tensor([[j < n for j in range(max(lengths))] for n in lengths])
    additive = torch.zeros(2, 1, max(lengths), max(lengths))
    additive.masked_fill_(~key_mask[:, None, None, :], torch.finfo(torch.float32).min)
    positions = torch.arange(max(lengths))[None].expand(2, -1)
    with torch.no_grad():
        states = model.model.language_model(inputs_embeds=embeds, attention_mask={"full_attention": additive},
                                            position_ids=positions).last_hidden_state
    for i, n in enumerate(lengths):
        refs[f"bidirectional.{i}.embeds"] = embeds[i, :n].numpy()
        refs[f"bidirectional.{i}.hidden"] = states[i, :n].numpy()
        pooled = torch.tanh(states[i, :n]).mean(0)
        for size in (64, 32, 16):
            sliced = pooled[:size]
            refs[f"bidirectional.{i}.pooled{size}"] = (sliced / sliced.norm()).numpy()
    return model


def qwen2(root, refs):
    """A bare Qwen2Model (no prefix, plain 1-D RoPE, causal), padded batch of two."""
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2Model
    config = Qwen2Config(vocab_size=1000, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=6,
                         num_key_value_heads=2, rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    torch.manual_seed(SEED + 1)
    model = Qwen2Model(config).eval()
    randomize(model)
    directory = os.path.join(root, "qwen2vl-tiny", "reference")
    os.makedirs(directory, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(directory, "qwen2-decoder.safetensors"))
    with open(os.path.join(directory, "qwen2-decoder.json"), "w") as f:
        json.dump({"vocab_size": 1000, "hidden_size": 48, "intermediate_size": 80, "num_hidden_layers": 2, "num_attention_heads": 6,
                   "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 10000.0}, f, indent=2)
    rng = np.random.default_rng(SEED + 1)
    rows = [rng.integers(0, 1000, n).tolist() for n in (9, 5)]
    input_ids, mask = pad(rows)
    with torch.no_grad():
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    for i, row in enumerate(rows):
        refs[f"qwen2.{i}.ids"] = np.array(row, dtype=np.int64)
        refs[f"qwen2.{i}.hidden"] = hidden[i, :len(row)].numpy()


def sail(tokenizer_json, root, refs, gme_model, name="qwen2vl-tiny-sail", queries=3, matryoshka=(64, 32, 16), dims=32):
    """SAIL-style: the GME model's vision tower and decoder with a perceiver per frame (3
    queries), a tiny random Whisper encoder (30 s window) + audio adapter (one token per 10 s
    chunk), bidirectional attention, tanh-mean pooling, Matryoshka 64/32/16 with records at 32.
    The reference is ours (sail_parts.py + transformers' modules; no HF class does this)."""
    import sail_parts  # noqa: E402 (qwen-vision's reference of the SAIL parts)
    import ember_convert  # noqa: E402
    import ember_reference  # noqa: E402
    from safetensors.torch import save_file
    from tokenizers import Tokenizer
    from transformers import Qwen2VLImageProcessor
    tokenizer = Tokenizer.from_file(tokenizer_json)
    work = tempfile.mkdtemp()
    hf = os.path.join(work, "hf")
    gme_model.save_pretrained(hf)
    import shutil
    shutil.copyfile(tokenizer_json, os.path.join(hf, "tokenizer.json"))

    torch.manual_seed(SEED + 2)
    width = gme_model.config.text_config.hidden_size
    perceiver_config = {"hidden_size": 64, "output_size": width, "num_queries": queries, "depth": 1, "num_heads": 4, "mlp_ratio": 2,
                        "hidden_act": "gelu", "layer_norm_eps": 1e-6}
    perceiver = sail_parts.Perceiver(**perceiver_config).eval()
    adapter_config = {"input_size": 32, "intermediate_size": 48, "output_size": width, "hidden_act": "gelu"}
    adapter = sail_parts.audio_adapter(32, 48, width, "gelu").eval()
    randomize(perceiver, 0.2)
    randomize(adapter, 0.2)
    extra = {"perceiver." + k: v.contiguous() for k, v in perceiver.state_dict().items()}
    extra.update({"audio_adapter." + k: v.contiguous() for k, v in adapter.state_dict().items()})
    save_file(extra, os.path.join(work, "extra.safetensors"))

    # A tiny Whisper encoder in Ember's audio layout (CTranslate2 names, F16), 80 mels, 30 s.
    rng = np.random.default_rng(SEED + 2)
    d, ffn, mels, positions = 32, 64, 80, 1500
    v = {"encoder/conv1/weight": rng.standard_normal((d, mels, 3)) * 0.1, "encoder/conv1/bias": rng.standard_normal(d) * 0.1,
         "encoder/conv2/weight": rng.standard_normal((d, d, 3)) * 0.2, "encoder/conv2/bias": rng.standard_normal(d) * 0.1,
         "encoder/layer_norm/gamma": 1 + rng.standard_normal(d) * 0.1, "encoder/layer_norm/beta": rng.standard_normal(d) * 0.1}
    p = "encoder/layer_0/"
    bias = rng.standard_normal(3 * d) * 0.1
    bias[d:2 * d] = 0  # Whisper's key projection has no bias
    v.update({p + "ffn/layer_norm/beta": rng.standard_normal(d) * 0.1, p + "ffn/layer_norm/gamma": 1 + rng.standard_normal(d) * 0.1,
              p + "ffn/linear_0/bias": rng.standard_normal(ffn) * 0.1, p + "ffn/linear_0/weight": rng.standard_normal((ffn, d)) * 0.3,
              p + "ffn/linear_1/bias": rng.standard_normal(d) * 0.1, p + "ffn/linear_1/weight": rng.standard_normal((d, ffn)) * 0.2,
              p + "self_attention/layer_norm/beta": rng.standard_normal(d) * 0.1,
              p + "self_attention/layer_norm/gamma": 1 + rng.standard_normal(d) * 0.1,
              p + "self_attention/linear_0/bias": bias, p + "self_attention/linear_0/weight": rng.standard_normal((3 * d, d)) * 0.3,
              p + "self_attention/linear_1/bias": rng.standard_normal(d) * 0.1,
              p + "self_attention/linear_1/weight": rng.standard_normal((d, d)) * 0.3})
    t = np.arange(positions)[:, None] * np.exp(-np.log(10000) / (d // 2 - 1) * np.arange(d // 2))[None, :]
    v["encoder/position_encodings/encodings"] = np.concatenate([np.sin(t), np.cos(t)], axis=1)
    v = {k: np.asarray(x, dtype=np.float16) for k, x in sorted(v.items())}
    audio_dir = os.path.join(work, "audio-tower")
    os.makedirs(audio_dir)
    ember_convert.write_safetensors(os.path.join(audio_dir, "audio.safetensors"), v, {"format": "2"})
    audio_config = {"num_mel_bins": mels, "d_model": d, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": ffn,
                    "max_source_positions": positions}
    with open(os.path.join(audio_dir, "manifest.json"), "w") as f:
        json.dump({"towers": {"audio": ember_convert.whisper_tower(audio_config)}}, f)
    encoder = ember_reference.whisper_encoder(v, audio_config)

    out = os.path.join(root, name)
    convert.convert(hf, out, name, "bidirectional", "tanh_mean", list(matryoshka), dims, INSTRUCTION, IMAGE_SIZE,
                    ["audio", "vision", "text"], 512, audio_tower=audio_dir, extra=os.path.join(work, "extra.safetensors"),
                    perceiver=perceiver_config, audio_adapter=adapter_config)
    if refs is None:
        return

    processor = Qwen2VLImageProcessor(do_resize=False, do_rescale=False, do_normalize=False)
    language = gme_model.model.language_model
    items = [(TEXTS[0], 2, 1500), (None, 0, 300), (TEXTS[1], 0, 0)]  # text + 2 frames + 15 s; 3 s of audio; text
    for i, (text, n, mel_frames) in enumerate(items):
        frames = rng.standard_normal((n, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
        mel = rng.standard_normal((mels, mel_frames)).astype(np.float32)
        refs[f"sail.{i}.frames"], refs[f"sail.{i}.mel"] = frames, mel
        with torch.no_grad():
            audio_tokens = [adapter(torch.from_numpy(ember_reference.whisper_states(encoder, mel[:, s:s + 1000]).mean(0)))
                            for s in range(0, mel_frames, 1000)]
            frame_tokens = []
            if n:
                pixels = processor(images=list(frames), return_tensors="pt", input_data_format="channels_first")
                merged = gme_model.model.visual(pixels["pixel_values"], grid_thw=pixels["image_grid_thw"]).pooler_output
                frame_tokens = [perceiver(block) for block in merged.split(merged.shape[0] // n)]
            ids = tokenizer.encode(prompt(n, 3, text, len(audio_tokens)), add_special_tokens=False).ids
            refs[f"sail.{i}.ids"] = np.array(ids, dtype=np.int64)
            x = language.embed_tokens(torch.tensor(ids))
            audio_rows = [j for j, token in enumerate(ids) if token == tokenizer.token_to_id("<|vision_pad|>")]
            image_rows = [j for j, token in enumerate(ids) if token == tokenizer.token_to_id("<|image_pad|>")]
            for row, token in zip(audio_rows, audio_tokens):
                x[row] = token
            if frame_tokens:
                x[image_rows] = torch.cat(frame_tokens)
            length = len(ids)
            states = language(inputs_embeds=x[None], attention_mask={"full_attention": torch.zeros(1, 1, length, length)},
                              position_ids=torch.arange(length)[None]).last_hidden_state[0]
            pooled = torch.tanh(states).mean(0)[:32]
            refs[f"sail.{i}.embedding"] = (pooled / pooled.norm()).numpy()


def bench_model(tokenizer_json, root):
    """`--bench-0.5b`: qwen2vl-bench-0.5b, the SAIL-style layout with a 0.5B-class decoder
    (Qwen2-0.5B's dims, random weights) and 16 perceiver queries per frame, for `ember run`'s
    end-to-end items/s (the vision and audio towers stay tiny: the decoder is what is measured)."""
    from tokenizers import Tokenizer
    from transformers import Qwen2VLForConditionalGeneration
    config = qwen2vl_config(Tokenizer.from_file(tokenizer_json), hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                            num_attention_heads=14, mrope_section=[8, 12, 12])
    torch.manual_seed(SEED)
    model = Qwen2VLForConditionalGeneration(config).eval()  # transformers' own init (std 0.02)
    sail(tokenizer_json, root, None, model, name="qwen2vl-bench-0.5b", queries=16, matryoshka=(896, 768, 128), dims=768)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--bench-0.5b":
        return bench_model(*sys.argv[2:])
    if len(sys.argv) != 3:
        sys.exit("usage: qwen2vl_tiny.py [--bench-0.5b] TOKENIZER_JSON OUT_ROOT")
    tokenizer_json, root = sys.argv[1:]
    torch.set_num_threads(1)
    refs = {}
    model = gme(tokenizer_json, root, refs)
    qwen2(root, refs)
    if os.path.exists(os.path.join(os.path.dirname(__file__), "sail_parts.py")):
        sail(tokenizer_json, root, refs, model)
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in refs.items()}, os.path.join(root, "qwen2vl-tiny", "reference.safetensors"),
              {"fixture_version": str(FIXTURE_VERSION), "texts": json.dumps(TEXTS, ensure_ascii=False),
               "instruction": INSTRUCTION})
    print("wrote", os.path.join(root, "qwen2vl-tiny"))


if __name__ == "__main__":
    main()
