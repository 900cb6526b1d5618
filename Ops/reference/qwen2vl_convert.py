"""Converts a Hugging Face Qwen2-VL / Qwen2 checkpoint directory into an Ember model
directory for the VLM-fusion architecture (`fusion.kind` "qwen2-vl-fusion"). numpy only.

    Ops/convert-qwen2vl SRC_DIR OUT_DIR [options]      (this file's command line; --help)

SRC_DIR holds config.json, model.safetensors (or shards with model.safetensors.index.json)
and tokenizer.json. Tensors are copied byte for byte (F32, F16 or BF16; Ember widens
them at load), keeping their checkpoint names, into one file per part:

    decoder.safetensors   embed_tokens, layers.N.*, norm  under `model.` or `model.language_model.`
                          (or no prefix for a bare Qwen2Model); lm_head.weight is dropped
    vision.safetensors    the Qwen2-VL vision tower, `visual.*` or `model.visual.*`
    fusion.safetensors    SAIL parts, when present: `perceiver.*` (per-frame perceiver) and
                          `audio_adapter.*` (audio chunk → one token), from SRC_DIR or --extra
    audio.safetensors     the audio tower, copied from --audio-tower (an Ember model
                          directory with a Whisper encoder, e.g. omni-small)

and writes manifest.json (format 2) with the decoder config (the text config's names,
`rope_parameters` flattened into rope_theta and mrope_section), the vision config and
preprocessing, attention, pooling, Matryoshka sizes and the prompt template.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import sys

FORMAT_VERSION = 2
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1}


def read_header(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return header, 8 + length


def source_tensors(src):
    """{name: (file, dtype, shape, absolute byte range)} over model.safetensors or its shards."""
    index = os.path.join(src, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    tensors = {}
    for name in files:
        path = os.path.join(src, name)
        header, start = read_header(path)
        for tensor, entry in header.items():
            begin, end = entry["data_offsets"]
            tensors[tensor] = (path, entry["dtype"], entry["shape"], (start + begin, start + end))
    return tensors


def write_part(path, names, tensors):
    """The named tensors, bytes unchanged, into one safetensors file (sorted names)."""
    header, offset = {}, 0
    for name in sorted(names):
        _, dtype, shape, (begin, end) = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + end - begin]}
        offset += end - begin
    header["__metadata__"] = {"format": str(FORMAT_VERSION)}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path + ".tmp", "wb") as out:
        out.write(struct.pack("<Q", len(blob)) + blob)
        for name in sorted(names):
            source, _, _, (begin, end) = tensors[name]
            with open(source, "rb") as f:
                f.seek(begin)
                out.write(f.read(end - begin))
    os.replace(path + ".tmp", path)


def decoder_prefix(tensors):
    for prefix in ("model.language_model.", "model.", ""):
        if prefix + "embed_tokens.weight" in tensors:
            return prefix
    sys.exit("no embed_tokens.weight under model.language_model., model. or the top level: not a Qwen2 checkpoint")


def text_config(config):
    """The decoder's config in Ember's manifest (Qwen2 names), from config.json."""
    text = config.get("text_config") or config
    rope = dict(text.get("rope_parameters") or text.get("rope_scaling") or {})
    theta = rope.get("rope_theta", text.get("rope_theta", 1000000.0))
    section = rope.get("mrope_section")
    if config.get("model_type") == "qwen2_vl" and section is None:
        section = [16, 24, 24]  # Qwen2VLRotaryEmbedding's default
    out = {k: text[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                "num_attention_heads", "num_key_value_heads", "rms_norm_eps")}
    out["rope_theta"] = float(theta)
    if section is not None:
        out["mrope_section"] = list(section)
    if text.get("hidden_act", "silu") != "silu":
        sys.exit(f"hidden_act {text['hidden_act']} is not supported (silu)")
    if text.get("use_sliding_window"):
        sys.exit("sliding-window attention is not supported")
    return out


def vision_config(config):
    v = config["vision_config"]
    out = {k: v[k] for k in ("depth", "embed_dim", "hidden_size", "hidden_act", "mlp_ratio", "num_heads", "in_channels",
                             "patch_size", "spatial_merge_size", "temporal_patch_size") if k in v}
    out["rope_parameters"] = {"rope_theta": float((v.get("rope_parameters") or {}).get("rope_theta", 10000.0))}
    return out


def weights_hash(out_dir, files):
    digest = hashlib.sha256()
    for name in files:
        with open(os.path.join(out_dir, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def convert(src, out, model_id, attention, pooling, matryoshka, dims, instruction, image_size, order,
            max_text_tokens, audio_tower=None, extra=None, perceiver=None, audio_adapter=None, audio_token="<|vision_pad|>",
            chunk_seconds=10.0):
    os.makedirs(out, exist_ok=True)
    config = json.load(open(os.path.join(src, "config.json")))
    tensors = source_tensors(src)
    if extra:
        tensors.update(source_tensors_file(extra))
    prefix = decoder_prefix(tensors)
    decoder_names = [n for n in tensors if n.startswith(prefix) and n[len(prefix):].split(".")[0] in ("embed_tokens", "layers", "norm")]
    vision_names = [n for n in tensors if n.startswith("visual.") or n.startswith("model.visual.")]
    fusion_names = [n for n in tensors if n.startswith("perceiver.") or n.startswith("audio_adapter.")]
    dropped = set(tensors) - set(decoder_names) - set(vision_names) - set(fusion_names) - {"lm_head.weight"}
    if dropped:
        sys.exit(f"tensors of no known part: {sorted(dropped)[:5]}")
    files = ["decoder.safetensors"]
    write_part(os.path.join(out, "decoder.safetensors"), decoder_names, tensors)
    shutil.copyfile(os.path.join(src, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    decoder = text_config(config)
    hidden = decoder["hidden_size"]
    matryoshka = matryoshka or [hidden]
    dims = dims or matryoshka[0]
    if any(m > hidden for m in matryoshka) or dims not in matryoshka:
        sys.exit(f"Matryoshka sizes {matryoshka} must be at most hidden_size {hidden} and include --dims {dims}")
    towers = {"text": {"architecture": "qwen2-bpe", "weights": "decoder.safetensors", "tokenizer_json": "tokenizer.json"}}
    vlm = {"decoder": decoder, "weights": "decoder.safetensors", "attention": attention, "pooling": pooling,
           "matryoshka": matryoshka, "max_text_tokens": max_text_tokens,
           "template": {"instruction": instruction, "audio_token": audio_token}, "audio_chunk_seconds": chunk_seconds}
    if vision_names:
        write_part(os.path.join(out, "vision.safetensors"), vision_names, tensors)
        files.append("vision.safetensors")
        vc = vision_config(config)
        side = vc["patch_size"] * vc["spatial_merge_size"]
        if image_size % side:
            sys.exit(f"--image-size {image_size} must be a multiple of patch_size × spatial_merge_size = {side}")
        towers["vision"] = {"architecture": "qwen2-vl-vision", "weights": "vision.safetensors", "qwen2_vision": vc,
                            "preprocessing": {"size": image_size, "resize": "center_crop", "resize_shorter_side": image_size,
                                              "interpolation": "bicubic", "mean": CLIP_MEAN, "std": CLIP_STD}}
    if fusion_names:
        write_part(os.path.join(out, "fusion.safetensors"), fusion_names, tensors)
        files.append("fusion.safetensors")
        vlm["fusion_weights"] = "fusion.safetensors"
        if any(n.startswith("perceiver.") for n in fusion_names):
            if perceiver is None:
                sys.exit("perceiver.* tensors need --perceiver-config")
            vlm["perceiver"] = perceiver
        if any(n.startswith("audio_adapter.") for n in fusion_names):
            if audio_adapter is None:
                sys.exit("audio_adapter.* tensors need --audio-adapter-config")
            vlm["audio_adapter"] = audio_adapter
    if audio_tower:
        source = json.load(open(os.path.join(audio_tower, "manifest.json")))["towers"]["audio"]
        shutil.copyfile(os.path.join(audio_tower, source["weights"]), os.path.join(out, "audio.safetensors"))
        files.append("audio.safetensors")
        towers["audio"] = dict(source, weights="audio.safetensors")
        if "audio_adapter" not in vlm:
            sys.exit("an audio tower needs audio_adapter.* tensors (the SAIL adapter) to reach the decoder")
    order = [m for m in order if m in towers]
    manifest = {"format": FORMAT_VERSION, "id": model_id, "version": "1", "weights_hash": weights_hash(out, files),
                "towers": towers, "fusion": {"kind": "qwen2-vl-fusion", "order": order, "weights": {}, "vlm": vlm},
                "output": {"dim": dims}}
    tmp = os.path.join(out, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, os.path.join(out, "manifest.json"))
    return manifest


def source_tensors_file(path):
    header, start = read_header(path)
    return {t: (path, e["dtype"], e["shape"], (start + e["data_offsets"][0], start + e["data_offsets"][1])) for t, e in header.items()}


def main(argv=None):
    p = argparse.ArgumentParser(prog="Ops/convert-qwen2vl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="Hugging Face checkpoint directory (config.json, model.safetensors, tokenizer.json)")
    p.add_argument("out", help="Ember model directory to write")
    p.add_argument("--id", default=None, help="model id in records (default: OUT's name)")
    p.add_argument("--attention", choices=["causal", "bidirectional"], default="causal",
                   help="causal (GME and other decoder-trained embedders) or bidirectional (SAIL)")
    p.add_argument("--pooling", choices=["last_token", "tanh_mean"], default="last_token",
                   help="last_token (GME: the final <|endoftext|>) or tanh_mean (SAIL: mean of tanh over tokens)")
    p.add_argument("--matryoshka", default="", help="nested output sizes, largest first, e.g. 1536,768,128")
    p.add_argument("--dims", type=int, default=0, help="the output size records carry (one of --matryoshka; default the largest)")
    p.add_argument("--instruction", default="You are a helpful assistant.", help="system prompt of the template")
    p.add_argument("--image-size", type=int, default=448, help="frames are resized and centre-cropped to this square (multiple of 28)")
    p.add_argument("--order", default="audio,vision,text", help="modalities in sequence order")
    p.add_argument("--max-text-tokens", type=int, default=512, help="text tokens kept per item")
    p.add_argument("--audio-tower", default=None, help="Ember model directory whose Whisper encoder embeds 10 s audio chunks")
    p.add_argument("--audio-token", default="<|vision_pad|>", help="placeholder token of one audio chunk")
    p.add_argument("--extra", default=None, help="safetensors with perceiver.* / audio_adapter.* tensors")
    p.add_argument("--perceiver-config", default=None, help="JSON of the perceiver (see README)")
    p.add_argument("--audio-adapter-config", default=None, help="JSON of the audio adapter (see README)")
    a = p.parse_args(argv)
    matryoshka = [int(x) for x in a.matryoshka.split(",") if x]
    m = convert(a.src, a.out, a.id or os.path.basename(os.path.normpath(a.out)), a.attention, a.pooling, matryoshka, a.dims,
                a.instruction, a.image_size, a.order.split(","), a.max_text_tokens, a.audio_tower, a.extra,
                json.loads(a.perceiver_config) if a.perceiver_config else None,
                json.loads(a.audio_adapter_config) if a.audio_adapter_config else None, a.audio_token)
    print(m["id"] + "@" + m["weights_hash"])


if __name__ == "__main__":
    main()
