"""Converts the omni-small source checkpoints into Ember's model directory format.

numpy only (no torch): reads the legacy PyTorch .pth pickle, the CTranslate2
model.bin and safetensors, changes layouts once (batch norm folded into the
preceding convolution), and writes `*.safetensors` plus `manifest.json`.

Format version 2 (FORMAT_VERSION below; the Swift loader rejects other versions, and
Ops/model-fetch re-converts when this file changes):
  text.safetensors    BERT tensors verbatim from the checkpoint, F32, int64
                      `embeddings.position_ids` dropped.
  vision.safetensors  EfficientNet-Lite tensors with `_bnN` folded into the conv
                      before it: `<conv>.weight` (scaled) and `<conv>.bias` (new), F32;
                      `_fc.weight`/`_fc.bias` kept (ImageNet logits, for checks).
  audio.safetensors   CTranslate2 Whisper encoder tensors verbatim (`encoder/...`),
                      F16 as stored; `encoder/num_heads` moves to the manifest config.
  asr.safetensors     the same checkpoint's decoder tensors verbatim (`decoder/...`), F16
                      as stored; its scalars (num_heads, pre_norm, ...) are checked and
                      move to `towers.audio.asr.config`, with the suppressed tokens of the
                      package's config.json. The output projection is tied to
                      `decoder/embeddings/weight` (CTranslate2 stores it once).
  asr-vocabulary.txt  the package's `vocabulary.txt` (one token per line, id = line - 1,
                      GPT-2 byte-level characters), unchanged.
  manifest.json       towers (architecture, config, weights, preprocessing), fusion, output.
                      Preprocessing is the whole contract EmberMedia builds its front end
                      from (EmberContract's VisionPreprocessing / AudioFrontEnd):
                      vision {size, resize: center_crop|letterbox, resize_shorter_side,
                      interpolation: bicubic|bilinear, mean, std}; audio {sample_rate,
                      n_fft, hop_length, n_mels, mel_scale, window_seconds}.
  Version 2 added resize/resize_shorter_side/interpolation, renamed image_size → size
  and max_seconds → window_seconds, and dropped output.matryoshka.
"""
import hashlib
import json
import os
import pickle
import re
import struct
import sys
from collections import OrderedDict

import numpy as np

FORMAT_VERSION = 2

# --- safetensors -------------------------------------------------------------------

_ST_DTYPES = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int64"): "I64"}
_ST_NUMPY = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "BF16": np.uint16}


def write_safetensors(path, tensors, metadata=None):
    """Writes `tensors` (name -> numpy array) in the order given, 8-byte aligned."""
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _ST_DTYPES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    header.pop("__metadata__", None)
    out = OrderedDict()
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(raw[8 + size + begin:8 + size + end], dtype=_ST_NUMPY[info["dtype"]])
        if info["dtype"] == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        out[name] = array.reshape(info["shape"])
    return out


# --- legacy (non-zip) PyTorch .pth ---------------------------------------------------

_TORCH_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


class _Storage:
    def __init__(self, dtype):
        self.dtype = dtype
        self.array = None


class _TensorStub:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self):
        item = self.storage.array.itemsize
        return np.lib.stride_tricks.as_strided(
            self.storage.array[self.offset:], shape=self.size,
            strides=tuple(s * item for s in self.stride)).copy()


def _rebuild_tensor_v2(storage, offset, size, stride, *_):
    return _TensorStub(storage, offset, size, stride)


class _StorageType:
    def __init__(self, name):
        self.name = name


class _PthUnpickler(pickle.Unpickler):
    """Resolves only the handful of torch globals a state dict needs; nothing is executed."""

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _TORCH_STORAGES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"unsupported global in checkpoint: {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {kind!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(_TORCH_STORAGES[storage_type.name])
        return self.storages[key]


def read_legacy_pth(path):
    """Reads a pre-1.6 `torch.save` file: magic, protocol, sys info, object, storage keys, raw storages."""
    with open(path, "rb") as f:
        magic = pickle.load(f)
        if magic != 0x1950A86A20F9469CFC6C:
            raise ValueError(f"{path}: not a legacy PyTorch file (zip checkpoints are not supported)")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        storages = {}
        state = _PthUnpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            data = f.read(numel * np.dtype(storage.dtype).itemsize)
            storage.array = np.frombuffer(data, dtype=storage.dtype)
    return OrderedDict((name, tensor.numpy()) for name, tensor in state.items())


# --- CTranslate2 model.bin --------------------------------------------------------------

_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ctranslate2(path):
    """Reads a CTranslate2 binary model (format version 6): name, revision, variables, aliases."""
    with open(path, "rb") as f:
        raw = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, raw, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def string():
        nonlocal pos
        (n,) = take("H")
        value = raw[pos:pos + n - 1].decode()
        pos += n
        return value

    (version,) = take("I")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 binary version {version}, expected 6")
    spec = string()
    take("I")  # revision
    (count,) = take("I")
    out = OrderedDict()
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = take("I" * rank)
        (dtype,) = take("B")
        (nbytes,) = take("I")
        if dtype not in _CT2_DTYPES:
            raise ValueError(f"{path}: {name} has unsupported dtype id {dtype}")
        out[name] = np.frombuffer(raw[pos:pos + nbytes], dtype=_CT2_DTYPES[dtype]).reshape(shape)
        pos += nbytes
    return spec, out


# --- tower converters -------------------------------------------------------------------

def convert_bert(source_dir, out_dir):
    tensors = read_safetensors(os.path.join(source_dir, "model.safetensors"))
    tensors.pop("embeddings.position_ids", None)
    tensors = OrderedDict((k, v.astype(np.float32)) for k, v in tensors.items())
    write_safetensors(os.path.join(out_dir, "text.safetensors"), tensors, {"format": str(FORMAT_VERSION)})
    with open(os.path.join(source_dir, "config.json")) as f:
        config = json.load(f)
    keys = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
            "layer_norm_eps", "max_position_embeddings", "type_vocab_size", "vocab_size", "pad_token_id"]
    return {k: config[k] for k in keys}


def fold_batch_norm(weight, gamma, beta, mean, var, eps):
    """conv(x, W) followed by BN == conv(x, W * s) + (beta - mean * s), s = gamma / sqrt(var + eps)."""
    scale = gamma / np.sqrt(var + eps)
    return (weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))).astype(np.float32), \
        (beta - mean * scale).astype(np.float32)


def convert_efficientnet_lite(state, out_path, eps=1e-3):
    """Folds `_bn0/_bn1/_bn2` into the convolutions they follow (names per the checkpoint)."""
    pairs = [("_conv_stem", "_bn0"), ("_conv_head", "_bn1")]
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("_blocks.")})
    for n in blocks:
        p = f"_blocks.{n}."
        if p + "_expand_conv.weight" in state:
            pairs.append((p + "_expand_conv", p + "_bn0"))
        pairs.append((p + "_depthwise_conv", p + "_bn1"))
        pairs.append((p + "_project_conv", p + "_bn2"))
    out, used = OrderedDict(), set()
    for conv, bn in pairs:
        w, b = fold_batch_norm(state[conv + ".weight"], state[bn + ".weight"], state[bn + ".bias"],
                               state[bn + ".running_mean"], state[bn + ".running_var"], eps)
        out[conv + ".weight"], out[conv + ".bias"] = w, b
        used |= {conv + ".weight"} | {bn + s for s in (".weight", ".bias", ".running_mean", ".running_var",
                                                           ".num_batches_tracked")}
    for name in ("_fc.weight", "_fc.bias"):
        out[name] = state[name].astype(np.float32)
        used.add(name)
    leftover = sorted(set(state) - used)
    if leftover:
        raise ValueError(f"unexpected tensors in EfficientNet-Lite checkpoint: {leftover[:5]}")
    write_safetensors(out_path, out, {"format": str(FORMAT_VERSION)})
    return len(blocks)


def convert_whisper_encoder(model_bin, out_path):
    _, variables = read_ctranslate2(model_bin)
    encoder = OrderedDict((k, v) for k, v in variables.items() if k.startswith("encoder/"))
    heads = int(encoder.pop("encoder/num_heads").reshape(-1)[0])
    layers = len({k.split("/")[1] for k in encoder if k.split("/")[1].startswith("layer_") and k.split("/")[1][6:].isdigit()})
    tensors = OrderedDict((k, v.astype(np.float16) if v.dtype != np.float16 else v) for k, v in encoder.items())
    write_safetensors(out_path, tensors, {"format": str(FORMAT_VERSION)})
    d_model = encoder["encoder/conv1/weight"].shape[0]
    return {"num_mel_bins": int(encoder["encoder/conv1/weight"].shape[1]), "d_model": int(d_model),
            "encoder_layers": layers, "encoder_attention_heads": heads,
            "encoder_ffn_dim": int(encoder["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
            "max_source_positions": int(encoder["encoder/position_encodings/encodings"].shape[0])}


# Decoder scalars CTranslate2's WhisperSpec stores, and the values Ember's decoder implements
# (activation 3 = GELU with erf; pre-norm; no embedding scale, ALiBi or zero start embedding).
_DECODER_SCALARS = {"decoder/activation": 3, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0, "decoder/alibi": 0,
                    "decoder/start_from_zero_embedding": 0}
_DECODER_IGNORED = ("decoder/alignment_heads", "decoder/alignment_layer")


def convert_whisper_decoder(model_bin, package_dir, out_dir):
    """Writes asr.safetensors + asr-vocabulary.txt; returns the manifest's `asr` block."""
    import shutil
    _, variables = read_ctranslate2(model_bin)
    decoder = OrderedDict((k, v) for k, v in variables.items() if k.startswith("decoder/"))
    for name, expected in _DECODER_SCALARS.items():
        value = int(decoder.pop(name).reshape(-1)[0])
        if value != expected:
            raise ValueError(f"{name} is {value}; Ember's Whisper decoder implements {expected}")
    for name in _DECODER_IGNORED:
        decoder.pop(name, None)
    heads = int(decoder.pop("decoder/num_heads").reshape(-1)[0])
    layers = len({k.split("/")[1] for k in decoder if re.fullmatch(r"layer_\d+", k.split("/")[1])})
    tensors = OrderedDict((k, v.astype(np.float16)) for k, v in decoder.items())
    write_safetensors(os.path.join(out_dir, "asr.safetensors"), tensors, {"format": str(FORMAT_VERSION)})
    shutil.copyfile(os.path.join(package_dir, "vocabulary.txt"), os.path.join(out_dir, "asr-vocabulary.txt"))
    with open(os.path.join(package_dir, "config.json")) as f:
        generation = json.load(f)
    vocab, d_model = decoder["decoder/embeddings/weight"].shape
    with open(os.path.join(out_dir, "asr-vocabulary.txt"), encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    if lines != vocab:
        raise ValueError(f"vocabulary.txt has {lines} tokens, the decoder's embeddings {vocab}")
    return {"architecture": "whisper-decoder", "weights": "asr.safetensors", "vocabulary": "asr-vocabulary.txt",
            "config": {"d_model": int(d_model), "decoder_layers": layers, "decoder_attention_heads": heads,
                       "decoder_ffn_dim": int(decoder["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
                       "max_target_positions": int(decoder["decoder/position_encodings/encodings"].shape[0]),
                       "vocab_size": int(vocab),
                       "suppress_tokens": [int(t) for t in generation["suppress_ids"]],
                       "begin_suppress_tokens": [int(t) for t in generation["suppress_ids_begin"]]}}


# EfficientNet-Lite0 stages (efficientnet_lite_pytorch utils.efficientnet_lite): repeats, kernel,
# stride, expansion, input, output.
LITE0_BLOCKS = ["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24", "r2_k5_s22_e6_i24_o40",
                "r3_k3_s22_e6_i40_o80", "r3_k5_s11_e6_i80_o112", "r4_k5_s22_e6_i112_o192",
                "r1_k3_s11_e6_i192_o320"]


def weights_hash(out_dir, files):
    digest = hashlib.sha256()
    for name in files:
        with open(os.path.join(out_dir, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


# EfficientNet-Lite0's eval transform: bicubic resize of the shorter side to 256, centre
# crop 224 (crop padding 32), mean 0.498 / std 0.502 (the Lite models' 127/128 scaling).
EFFICIENTNET_LITE0_PREPROCESSING = {
    "size": 224, "resize": "center_crop", "resize_shorter_side": 256, "interpolation": "bicubic",
    "mean": [0.498, 0.498, 0.498], "std": [0.502, 0.502, 0.502],
}


# Manifest entries omni-small and omni-base share.
LITE0_TOWER = {"architecture": "efficientnet-lite", "weights": "vision.safetensors",
               "config": {"blocks": LITE0_BLOCKS, "stem_channels": 32, "head_channels": 1280,
                          "num_classes": 1000, "batch_norm_folded": True},
               "preprocessing": EFFICIENTNET_LITE0_PREPROCESSING,
               "pooling": "mean"}
LATE_FUSION = {"kind": "late", "order": ["text", "vision", "audio"],
               "weights": {"text": 1.0, "vision": 1.0, "audio": 1.0}}


def whisper_tower(config, asr=None):
    tower = {"architecture": "whisper-encoder", "weights": "audio.safetensors", "config": config,
             "preprocessing": {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": 80,
                               "mel_scale": "slaney", "window_seconds": 30},
             "pooling": "mean"}
    if asr is not None:
        tower["asr"] = asr  # speech transcription (the same checkpoint's decoder); not part of weights_hash
    return tower


def build_omni_small(text_dir, pth_path, ct2_dir, out_dir):
    import shutil
    os.makedirs(out_dir, exist_ok=True)
    text_config = convert_bert(text_dir, out_dir)
    for name in ("vocab.txt", "tokenizer.json"):
        shutil.copyfile(os.path.join(text_dir, name), os.path.join(out_dir, name))
    convert_efficientnet_lite(read_legacy_pth(pth_path), os.path.join(out_dir, "vision.safetensors"))
    audio_config = convert_whisper_encoder(os.path.join(ct2_dir, "model.bin"), os.path.join(out_dir, "audio.safetensors"))
    asr = convert_whisper_decoder(os.path.join(ct2_dir, "model.bin"), ct2_dir, out_dir)
    files = ["text.safetensors", "vision.safetensors", "audio.safetensors"]
    manifest = {
        "format": FORMAT_VERSION,
        "id": "omni-small",
        "version": "1",
        "weights_hash": weights_hash(out_dir, files),
        "towers": {
            "text": {"architecture": "bert", "weights": "text.safetensors", "config": text_config,
                     "tokenizer": {"vocab": "vocab.txt", "lowercase": True, "strip_accents": True,
                                   "tokenize_chinese_chars": True, "max_length": 256},
                     "pooling": "mean"},
            "vision": LITE0_TOWER,
            "audio": whisper_tower(audio_config, asr),
        },
        "fusion": LATE_FUSION,
        "output": {"dim": 2048},
    }
    write_manifest(out_dir, manifest)
    return manifest


def write_manifest(out_dir, manifest):
    """`out_dir/manifest.json`, replaced atomically (a reader never sees half a file)."""
    tmp = os.path.join(out_dir, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(out_dir, "manifest.json"))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: ember_convert.py TEXT_MODEL_DIR LITE0_PTH CT2_MODEL_DIR OUT_DIR")
    m = build_omni_small(*sys.argv[1:])
    print(m["id"] + "@" + m["weights_hash"])
