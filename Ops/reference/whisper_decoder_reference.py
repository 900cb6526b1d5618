"""PyTorch reference for Ember's Whisper decoder (Sources/EmberModel/Audio/WhisperDecoder.swift).

    ~/.cache/ember/venv/bin/python Ops/reference/whisper_decoder_reference.py fixtures
    ~/.cache/ember/venv/bin/python Ops/reference/whisper_decoder_reference.py transcribe MODEL_DIR WAV...

transformers' WhisperForConditionalGeneration built offline from Ember's converted model
directory (asr.safetensors + audio.safetensors, F16 widened to F32; q/k/v and k/v split
back out of CTranslate2's fused linears; the output projection tied to the embeddings).

`fixtures` writes Tests/EmberModelTests/Fixtures/asr/<model>.safetensors for omni-small
and omni-base ($EMBER_MODEL_DIR / $EMBER_OMNI_BASE_DIR): the encoder states of a short
espeak-ng clip (unpadded, as ember_reference.whisper_states), the prompt + greedy
tokens the reference decodes from them, and the logits at every position for the ids
in `columns` (every 7th id plus all special tokens: the full rows would be 200 KB each).
The Swift test steps its decoder over the same tokens from the same states.

`transcribe` prints the reference's greedy transcript of 16 kHz WAV files, padded to
30 s as Whisper does (language detected, timestamps off, the same suppression).
Fixture version: FIXTURE_VERSION.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ember_convert as convert  # noqa: E402
import ember_reference as ref  # noqa: E402

FIXTURE_VERSION = 1
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Tests/EmberModelTests/Fixtures/asr")
SPEECH = {"omni-small": ("en-us", "The weather is nice today, let us go for a walk in the park."),
          "omni-base": ("de", "Das Wetter ist heute schön, wir gehen im Park spazieren.")}
GREEDY_STEPS = 8


def model_dirs():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return {"omni-small": os.environ.get("EMBER_MODEL_DIR") or f"{cache}/ember/models/omni-small",
            "omni-base": os.environ.get("EMBER_OMNI_BASE_DIR") or f"{cache}/ember/models/omni-base"}


def load(model_dir):
    """(model, manifest, vocabulary lines) from an Ember model directory."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    audio = manifest["towers"]["audio"]
    enc, dec = audio["config"], audio["asr"]["config"]
    variables = dict(convert.read_safetensors(os.path.join(model_dir, audio["weights"])))
    variables.update(convert.read_safetensors(os.path.join(model_dir, audio["asr"]["weights"])))
    d = dec["d_model"]
    config = WhisperConfig(vocab_size=dec["vocab_size"], num_mel_bins=enc["num_mel_bins"], d_model=d,
                           encoder_layers=enc["encoder_layers"], encoder_attention_heads=enc["encoder_attention_heads"],
                           encoder_ffn_dim=enc["encoder_ffn_dim"], max_source_positions=enc["max_source_positions"],
                           decoder_layers=dec["decoder_layers"], decoder_attention_heads=dec["decoder_attention_heads"],
                           decoder_ffn_dim=dec["decoder_ffn_dim"], max_target_positions=dec["max_target_positions"],
                           scale_embedding=False, tie_word_embeddings=True, attn_implementation="eager")
    model = WhisperForConditionalGeneration(config).eval()
    model.model.encoder.load_state_dict(ref.whisper_encoder(variables, enc).state_dict(), strict=True)
    t = lambda name: torch.from_numpy(np.asarray(variables["decoder/" + name], dtype=np.float32).copy())
    sd = {"embed_tokens.weight": t("embeddings/weight"), "embed_positions.weight": t("position_encodings/encodings"),
          "layer_norm.weight": t("layer_norm/gamma"), "layer_norm.bias": t("layer_norm/beta")}
    for i in range(dec["decoder_layers"]):
        p, q = f"layer_{i}/", f"layers.{i}."
        w, b = t(p + "self_attention/linear_0/weight"), t(p + "self_attention/linear_0/bias")
        sd[q + "self_attn.q_proj.weight"], sd[q + "self_attn.k_proj.weight"], sd[q + "self_attn.v_proj.weight"] = w[:d], w[d:2 * d], w[2 * d:]
        sd[q + "self_attn.q_proj.bias"], sd[q + "self_attn.v_proj.bias"] = b[:d], b[2 * d:]
        assert float(b[d:2 * d].abs().max()) == 0.0, "self-attention k bias must be zero"
        sd[q + "self_attn.out_proj.weight"], sd[q + "self_attn.out_proj.bias"] = t(p + "self_attention/linear_1/weight"), t(p + "self_attention/linear_1/bias")
        sd[q + "self_attn_layer_norm.weight"], sd[q + "self_attn_layer_norm.bias"] = t(p + "self_attention/layer_norm/gamma"), t(p + "self_attention/layer_norm/beta")
        sd[q + "encoder_attn.q_proj.weight"], sd[q + "encoder_attn.q_proj.bias"] = t(p + "attention/linear_0/weight"), t(p + "attention/linear_0/bias")
        w, b = t(p + "attention/linear_1/weight"), t(p + "attention/linear_1/bias")
        sd[q + "encoder_attn.k_proj.weight"], sd[q + "encoder_attn.v_proj.weight"] = w[:d], w[d:]
        sd[q + "encoder_attn.v_proj.bias"] = b[d:]
        assert float(b[:d].abs().max()) == 0.0, "cross-attention k bias must be zero"
        sd[q + "encoder_attn.out_proj.weight"], sd[q + "encoder_attn.out_proj.bias"] = t(p + "attention/linear_2/weight"), t(p + "attention/linear_2/bias")
        sd[q + "encoder_attn_layer_norm.weight"], sd[q + "encoder_attn_layer_norm.bias"] = t(p + "attention/layer_norm/gamma"), t(p + "attention/layer_norm/beta")
        sd[q + "fc1.weight"], sd[q + "fc1.bias"] = t(p + "ffn/linear_0/weight"), t(p + "ffn/linear_0/bias")
        sd[q + "fc2.weight"], sd[q + "fc2.bias"] = t(p + "ffn/linear_1/weight"), t(p + "ffn/linear_1/bias")
        sd[q + "final_layer_norm.weight"], sd[q + "final_layer_norm.bias"] = t(p + "ffn/layer_norm/gamma"), t(p + "ffn/layer_norm/beta")
    model.model.decoder.load_state_dict(sd, strict=True)
    model.tie_weights()
    with open(os.path.join(model_dir, audio["asr"]["vocabulary"]), encoding="utf-8") as f:
        vocab = f.read().split("\n")[:dec["vocab_size"]]
    return model, manifest, vocab


def logits(model, states, tokens):
    """Logits (T, V) of every position of `tokens` against encoder `states` (S, D)."""
    with torch.no_grad():
        h = model.model.decoder(input_ids=torch.tensor([tokens]), encoder_hidden_states=torch.from_numpy(states[None])).last_hidden_state
        return model.proj_out(h)[0].numpy()


def special(vocab):
    return {tok: i for i, tok in enumerate(vocab) if tok.startswith("<|") and tok.endswith("|>")}


def greedy(model, manifest, vocab, states, steps):
    """Whisper's greedy decoding without timestamps: (tokens incl. prompt, language, no-speech probability)."""
    ids, dec = special(vocab), manifest["towers"]["audio"]["asr"]["config"]
    sot, eot = ids["<|startoftranscript|>"], ids["<|endoftext|>"]
    first = logits(model, states, [sot])[0]
    probs = torch.softmax(torch.from_numpy(first).double(), -1).numpy()
    no_speech = float(probs[ids.get("<|nocaptions|>", ids.get("<|nospeech|>"))])
    prompt, language = [sot], "en"
    if len(vocab) >= 51865:
        languages = range(sot + 1, ids["<|translate|>"])
        best = max(languages, key=lambda i: first[i])
        language = vocab[best][2:-2]
        prompt += [best, ids["<|transcribe|>"]]
    prompt.append(ids["<|notimestamps|>"])
    suppressed = set(dec["suppress_tokens"]) | {ids[k] for k in ("<|transcribe|>", "<|translate|>", "<|startoftranscript|>",
                                                                 "<|startofprev|>", "<|startoflm|>")}
    suppressed |= {ids.get("<|nocaptions|>", ids.get("<|nospeech|>"))} | set(range(eot + 1, len(vocab)))
    tokens = list(prompt)
    for step in range(steps):
        row = logits(model, states, tokens)[-1].copy()
        row[sorted(suppressed)] = -np.inf
        if step == 0:
            row[dec["begin_suppress_tokens"]] = -np.inf
        best = int(np.argmax(row))
        if best == eot:
            break
        tokens.append(best)
    return tokens, len(prompt), language, no_speech


def text_of(vocab, tokens):
    byte_of = {}
    n = 0
    for b in range(256):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF:
            byte_of[chr(b)] = b
        else:
            byte_of[chr(256 + n)] = b
            n += 1
    eot = special(vocab)["<|endoftext|>"]
    data = bytes(byte_of[c] for t in tokens if t < eot for c in vocab[t])
    return data.decode("utf-8", errors="replace").strip()


def espeak_audio(voice, sentence):
    from transformers import WhisperFeatureExtractor
    with tempfile.TemporaryDirectory() as work:
        wav = os.path.join(work, "speech.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", os.path.join(work, "raw.wav"), sentence], check=True)
        subprocess.run(["ffmpeg", "-v", "error", "-i", os.path.join(work, "raw.wav"), "-ar", "16000", "-ac", "1", "-f", "f32le", wav], check=True)
        audio = np.fromfile(wav, dtype=np.float32)
    extractor = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000)
    return audio, extractor


def make_fixtures():
    os.makedirs(OUT, exist_ok=True)
    for name, model_dir in model_dirs().items():
        model, manifest, vocab = load(model_dir)
        voice, sentence = SPEECH[name]
        audio, extractor = espeak_audio(voice, sentence)
        mel = extractor(audio, sampling_rate=16000, padding="longest", return_tensors="np")["input_features"][0][:, :len(audio) // 160]
        states = ref.whisper_states(model.model.encoder, mel).astype(np.float32)
        tokens, prompt, language, no_speech = greedy(model, manifest, vocab, states, GREEDY_STEPS)
        full = logits(model, states, tokens)
        eot = special(vocab)["<|endoftext|>"]
        columns = np.array(sorted(set(range(0, len(vocab), 7)) | set(range(eot, len(vocab)))), dtype=np.int64)
        convert.write_safetensors(os.path.join(OUT, f"{name}.safetensors"), {
            "states": states, "tokens": np.array(tokens, dtype=np.int64), "columns": columns,
            "logits": full[:, columns].astype(np.float32)},
            {"fixture_version": str(FIXTURE_VERSION), "model": name, "language": language, "prompt": str(prompt),
             "no_speech": repr(no_speech), "text": text_of(vocab, tokens[prompt:])})
        print(name, states.shape, "tokens", tokens, language, "no_speech %.4f" % no_speech, repr(text_of(vocab, tokens[prompt:])))


def transcribe(model_dir, wavs):
    from transformers import WhisperFeatureExtractor
    model, manifest, vocab = load(model_dir)
    extractor = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000)
    for wav in wavs:
        audio = np.frombuffer(subprocess.run(["ffmpeg", "-v", "error", "-i", wav, "-ar", "16000", "-ac", "1", "-f", "f32le", "-"],
                                             check=True, capture_output=True).stdout, dtype=np.float32)
        mel = extractor(audio[:480000], sampling_rate=16000, return_tensors="np")["input_features"][0]
        with torch.no_grad():
            states = model.model.encoder(torch.from_numpy(mel[None])).last_hidden_state[0].numpy()
        tokens, prompt, language, no_speech = greedy(model, manifest, vocab, states, 224)
        print(json.dumps({"file": wav, "language": language, "no_speech": round(no_speech, 4), "text": text_of(vocab, tokens[prompt:])},
                         ensure_ascii=False))


if __name__ == "__main__":
    torch.manual_seed(0)
    if sys.argv[1:2] == ["fixtures"]:
        make_fixtures()
    elif sys.argv[1:2] == ["transcribe"] and len(sys.argv) >= 4:
        transcribe(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
