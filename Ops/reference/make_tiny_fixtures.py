"""Makes the tiny random-weight parity fixtures in Tests/EmberModelTests/Fixtures/tiny.

    ~/.cache/ember/venv/bin/python Ops/reference/make_tiny_fixtures.py

Source-format checkpoints (HF safetensors, a legacy torch.save .pth, a CTranslate2
model.bin) go through the real converter (ember_convert.py) into a model directory with
all three towers; reference outputs from the PyTorch references go to reference.safetensors.
Fixture format version: FIXTURE_VERSION (bump when the layout changes).
"""
import json
import os
import struct
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import ember_convert as convert  # noqa: E402
import ember_reference as ref  # noqa: E402

FIXTURE_VERSION = 1
OUT = os.path.join(os.path.dirname(__file__), "../../Tests/EmberModelTests/Fixtures/tiny")
torch.manual_seed(1234)
rng = np.random.default_rng(1234)

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "ran",
         "un", "##able", "##s", ",", ".", "!", "a", "b", "c", "é", "中", "文", "hello", "world", "##ing", "play"]
TEXTS = ["the cat sat on the mat.", "Hello, World!", "playing dogs ran", "中文 a b c"]


def write_ct2(path, variables, spec="WhisperSpec"):
    """CTranslate2 binary version 6, as ctranslate2.specs.ModelSpec.save writes it."""
    def string(s):
        data = s.encode()
        return struct.pack("<H", len(data) + 1) + data + b"\0"
    dtypes = {np.dtype("float32"): 0, np.dtype("int16"): 2, np.dtype("float16"): 4}
    out = struct.pack("<I", 6) + string(spec) + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, value in variables.items():
        value = np.require(value, requirements='C')
        out += string(name) + struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape)
        out += struct.pack("<B", dtypes[value.dtype]) + struct.pack("<I", value.nbytes) + value.tobytes()
    out += struct.pack("<I", 0)
    with open(path, "wb") as f:
        f.write(out)


def sinusoids(length, channels):
    increment = np.log(10000) / (channels // 2 - 1)
    inv = np.exp(-increment * np.arange(channels // 2))
    t = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    refs = {}
    work = tempfile.mkdtemp()

    # --- text: tiny BERT in the Hugging Face layout -------------------------------------
    from transformers import BertConfig, BertModel, BertTokenizer
    text_dir = os.path.join(work, "bert")
    os.makedirs(text_dir)
    with open(os.path.join(text_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=24, hidden_act="gelu")
    bert = BertModel(config).eval()
    for p in bert.parameters():
        p.data.normal_(0, 0.5)
    bert.save_pretrained(text_dir, safe_serialization=True)
    text_config = convert.convert_bert(text_dir, OUT)
    with open(os.path.join(OUT, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    tokenizer = BertTokenizer(os.path.join(text_dir, "vocab.txt"), do_lower_case=True)
    sequences = [tokenizer(t)["input_ids"] for t in TEXTS]
    embeddings, states = ref.bert_embed(bert, sequences)
    for i, (s, e, h) in enumerate(zip(sequences, embeddings, states)):
        refs[f"text.{i}.ids"] = np.array(s, dtype=np.int64)
        refs[f"text.{i}.embedding"] = e
        refs[f"text.{i}.states"] = h

    # --- vision: tiny EfficientNet-Lite, saved with legacy torch.save, BN folded by the converter
    blocks = ["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24", "r1_k5_s22_e6_i24_o40"]
    image_size, classes = 33, 10
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite_pytorch.utils import BlockDecoder, get_model_params
    _, gp = get_model_params("efficientnet-lite0", {"image_size": image_size, "num_classes": classes})
    net = EfficientNet(BlockDecoder.decode(blocks), gp).eval()
    state = net.state_dict()
    for name, value in state.items():
        if name.endswith("running_var"):
            value.copy_(torch.rand_like(value) + 0.5)
        elif name.endswith("running_mean") or name.endswith(".bias"):
            value.copy_(torch.randn_like(value) * 0.1)
        elif value.dtype == torch.float32:
            value.copy_(torch.randn_like(value) * (0.5 if name.endswith("bn0.weight") or "_bn" in name else 0.3))
    net.load_state_dict(state)
    pth = os.path.join(work, "lite.pth")
    torch.save(net.state_dict(), pth, _use_new_zipfile_serialization=False)
    convert.convert_efficientnet_lite(convert.read_legacy_pth(pth), os.path.join(OUT, "vision.safetensors"))
    frames = rng.standard_normal((3, 3, image_size, image_size)).astype(np.float32)
    features, logits = ref.efficientnet_features(net, frames)
    refs["vision.frames"], refs["vision.features"], refs["vision.logits"] = frames, features, logits

    # --- audio: tiny Whisper encoder written as a CTranslate2 model.bin ------------------
    d, heads, layers, ffn, mels, positions = 32, 4, 2, 64, 8, 16
    v = {"encoder/conv1/weight": rng.standard_normal((d, mels, 3)) * 0.3, "encoder/conv1/bias": rng.standard_normal(d) * 0.1,
         "encoder/conv2/weight": rng.standard_normal((d, d, 3)) * 0.2, "encoder/conv2/bias": rng.standard_normal(d) * 0.1}
    for i in range(layers):
        p = f"encoder/layer_{i}/"
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
    v["encoder/layer_norm/beta"] = rng.standard_normal(d) * 0.1
    v["encoder/layer_norm/gamma"] = 1 + rng.standard_normal(d) * 0.1
    v["encoder/position_encodings/encodings"] = sinusoids(positions, d)
    v = {k: np.asarray(x, dtype=np.float16) for k, x in sorted(v.items())}
    v["encoder/num_heads"] = np.array(heads, dtype=np.int16)
    ct2 = os.path.join(work, "model.bin")
    write_ct2(ct2, v)
    audio_config = convert.convert_whisper_encoder(ct2, os.path.join(OUT, "audio.safetensors"))
    _, variables = convert.read_ctranslate2(ct2)
    encoder = ref.whisper_encoder(variables, audio_config)
    for i, frames_count in enumerate([21, 10, 1]):
        mel = rng.standard_normal((mels, frames_count)).astype(np.float32)
        refs[f"audio.{i}.mel"] = mel
        refs[f"audio.{i}.states"] = ref.whisper_states(encoder, mel)

    manifest = {
        "format": convert.FORMAT_VERSION, "id": "tiny-omni", "version": str(FIXTURE_VERSION),
        "weights_hash": convert.weights_hash(OUT, ["text.safetensors", "vision.safetensors", "audio.safetensors"]),
        "towers": {
            "text": {"architecture": "bert", "weights": "text.safetensors", "config": text_config,
                     "tokenizer": {"vocab": "vocab.txt", "lowercase": True, "strip_accents": True,
                                   "tokenize_chinese_chars": True, "max_length": 24}, "pooling": "mean"},
            "vision": {"architecture": "efficientnet-lite", "weights": "vision.safetensors",
                       "config": {"blocks": blocks, "stem_channels": 32, "head_channels": 1280, "num_classes": classes,
                                  "batch_norm_folded": True},
                       "preprocessing": {"size": image_size, "resize": "center_crop", "resize_shorter_side": image_size + 5,
                                         "interpolation": "bicubic", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
                       "pooling": "mean"},
            "audio": {"architecture": "whisper-encoder", "weights": "audio.safetensors", "config": audio_config,
                      "preprocessing": {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": mels,
                                        "mel_scale": "slaney", "window_seconds": 0.32}, "pooling": "mean"},
        },
        "fusion": {"kind": "late", "order": ["text", "vision", "audio"], "weights": {"text": 1.0, "vision": 0.5, "audio": 2.0}},
        "output": {"dim": 32 + 1280 + 32},
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    convert.write_safetensors(os.path.join(OUT, "reference.safetensors"),
                              {k: np.ascontiguousarray(x, dtype=np.int64 if x.dtype == np.int64 else np.float32) for k, x in refs.items()},
                              {"fixture_version": str(FIXTURE_VERSION), "texts": json.dumps(TEXTS)})
    with open(os.path.join(OUT, "texts.json"), "w") as f:
        json.dump(TEXTS, f, ensure_ascii=False)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
