"""PyTorch references for Ember's towers (tools for fixtures and parity, not product code).

Each function runs the reference implementation the Swift file names on its first line:
transformers BertModel + mean pooling, efficientnet_lite_pytorch EfficientNet, and
transformers' Whisper encoder layers fed with CTranslate2 weights, without padding to 30 s.
"""
import numpy as np
import torch
import torch.nn.functional as F

torch.set_grad_enabled(False)


def bert_embed(model, sequences, bf16=False):
    """sentence-transformers style: mean over real tokens of last_hidden_state, then L2
    (`bf16`: the forward pass under bf16 autocast, as the benchmarks' bf16 mode)."""
    width = max(len(s) for s in sequences)
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state.float()
    m = mask.unsqueeze(-1).float()
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=1).numpy(), [hidden[i, :len(s)].numpy() for i, s in enumerate(sequences)]


def efficientnet_lite(blocks, image_size, num_classes, state_dict):
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite_pytorch.utils import BlockDecoder, get_model_params
    _, global_params = get_model_params("efficientnet-lite0", {"image_size": image_size, "num_classes": num_classes})
    model = EfficientNet(BlockDecoder.decode(blocks), global_params)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()})
    return model.eval()


def efficientnet_features(model, frames):
    """Pooled head features (N, 1280) and logits (N, classes) of frames (N, 3, S, S)."""
    x = model.extract_features(torch.from_numpy(frames))
    pooled = x.mean(dim=(2, 3))
    return pooled.numpy(), model._fc(pooled).numpy()


def whisper_encoder(variables, config, attn_implementation="eager"):
    """transformers WhisperEncoder with CTranslate2 `encoder/...` weights (F16 widened to F32).
    `attn_implementation` "sdpa" is the faster kernel the benchmarks' PyTorch side uses."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder
    d = config["d_model"]
    hf = WhisperConfig(num_mel_bins=config["num_mel_bins"], d_model=d, encoder_layers=config["encoder_layers"],
                       encoder_attention_heads=config["encoder_attention_heads"], encoder_ffn_dim=config["encoder_ffn_dim"],
                       max_source_positions=config["max_source_positions"], decoder_layers=1, decoder_attention_heads=1,
                       attn_implementation=attn_implementation)
    encoder = WhisperEncoder(hf).eval()
    t = lambda name: torch.from_numpy(np.asarray(variables["encoder/" + name], dtype=np.float32).copy())
    sd = {"conv1.weight": t("conv1/weight"), "conv1.bias": t("conv1/bias"),
          "conv2.weight": t("conv2/weight"), "conv2.bias": t("conv2/bias"),
          "embed_positions.weight": t("position_encodings/encodings"),
          "layer_norm.weight": t("layer_norm/gamma"), "layer_norm.bias": t("layer_norm/beta")}
    for i in range(config["encoder_layers"]):
        p, q = f"layer_{i}/", f"layers.{i}."
        w, b = t(p + "self_attention/linear_0/weight"), t(p + "self_attention/linear_0/bias")
        sd[q + "self_attn.q_proj.weight"], sd[q + "self_attn.k_proj.weight"], sd[q + "self_attn.v_proj.weight"] = w[:d], w[d:2 * d], w[2 * d:]
        sd[q + "self_attn.q_proj.bias"], sd[q + "self_attn.v_proj.bias"] = b[:d], b[2 * d:]
        assert float(b[d:2 * d].abs().max()) == 0.0, "k bias must be zero"
        sd[q + "self_attn.out_proj.weight"], sd[q + "self_attn.out_proj.bias"] = t(p + "self_attention/linear_1/weight"), t(p + "self_attention/linear_1/bias")
        sd[q + "self_attn_layer_norm.weight"], sd[q + "self_attn_layer_norm.bias"] = t(p + "self_attention/layer_norm/gamma"), t(p + "self_attention/layer_norm/beta")
        sd[q + "fc1.weight"], sd[q + "fc1.bias"] = t(p + "ffn/linear_0/weight"), t(p + "ffn/linear_0/bias")
        sd[q + "fc2.weight"], sd[q + "fc2.bias"] = t(p + "ffn/linear_1/weight"), t(p + "ffn/linear_1/bias")
        sd[q + "final_layer_norm.weight"], sd[q + "final_layer_norm.bias"] = t(p + "ffn/layer_norm/gamma"), t(p + "ffn/layer_norm/beta")
    encoder.load_state_dict(sd, strict=True)
    return encoder


def whisper_states(encoder, mel):
    """Encoder states (P, D) of one clip mel (M, T), positions sliced to P = ceil(T/2): no 30 s padding."""
    x = torch.from_numpy(mel[None].astype(np.float32))
    x = F.gelu(encoder.conv1(x))
    x = F.gelu(encoder.conv2(x)).permute(0, 2, 1)
    x = x + encoder.embed_positions.weight[:x.shape[1]]
    for layer in encoder.layers:
        out = layer(x, attention_mask=None)
        x = out[0] if isinstance(out, tuple) else out
    return encoder.layer_norm(x)[0].numpy()
