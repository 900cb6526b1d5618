"""PyTorch reference for the SAIL-only parts of Ember's VLM-fusion model (issue 14).

These parts have no Hugging Face class, so this file defines them; the Swift ports
(Sources/EmberModel/Fusion/Perceiver.swift, AudioAdapter.swift) match it within 1e-4.

Perceiver, per frame (tensor names under `perceiver.`):
    queries                      (N_q, D)        learnable queries
    blocks.{i}.norm1.weight/bias (D)             LayerNorm (eps 1e-6), pre-norm
    blocks.{i}.attn.qkv.weight   (3D, D) + bias  fused q, k, v; bidirectional, no positions
    blocks.{i}.attn.proj.weight  (D, D) + bias
    blocks.{i}.norm2.weight/bias (D)
    blocks.{i}.mlp.fc1.weight    (F, D) + bias   GELU (erf) or quick_gelu per config
    blocks.{i}.mlp.fc2.weight    (D, F) + bias
    proj.weight                  (O, D) + bias   to the LLM width O
  x = cat(queries, frame tokens (L, D)); x = blocks(x); out = proj(x[:N_q])  -> (N_q, O)

Audio adapter (names under `audio_adapter.`), one token per 10 s audio chunk:
    0.weight (H, A) + bias, GELU (erf), 2.weight (O, H) + bias: (A) -> (O)
"""
import torch
from torch import nn


def activation(name):
    if name == "gelu":
        return nn.GELU()
    if name == "quick_gelu":
        return QuickGELU()
    raise ValueError(f"unsupported hidden_act {name}")


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x):  # x: (L, D), every row attends to every row
        length, width = x.shape
        q, k, v = self.qkv(x).reshape(length, 3, self.heads, -1).permute(1, 2, 0, 3)
        scores = (q @ k.transpose(-1, -2)) * (width // self.heads) ** -0.5
        out = scores.softmax(-1) @ v  # (heads, L, hd)
        return self.proj(out.transpose(0, 1).reshape(length, width))


class Mlp(nn.Module):
    def __init__(self, width, hidden, act):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = activation(act)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio, act, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, int(width * mlp_ratio), act)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Perceiver(nn.Module):
    """config keys as PerceiverConfig in Swift: hidden_size (D), num_queries, depth, num_heads,
    mlp_ratio, hidden_act, output_size (O), layer_norm_eps."""

    def __init__(self, hidden_size, output_size, num_queries=16, depth=1, num_heads=8, mlp_ratio=4,
                 hidden_act="gelu", layer_norm_eps=1e-6):
        super().__init__()
        self.queries = nn.Parameter(torch.zeros(num_queries, hidden_size))
        self.blocks = nn.ModuleList(
            [Block(hidden_size, num_heads, mlp_ratio, hidden_act, layer_norm_eps) for _ in range(depth)])
        self.proj = nn.Linear(hidden_size, output_size)

    def forward(self, frame_tokens):  # (L, D) -> (N_q, O)
        x = torch.cat([self.queries, frame_tokens], dim=0)
        for block in self.blocks:
            x = block(x)
        return self.proj(x[: self.queries.shape[0]])


def audio_adapter(input_size, intermediate_size, output_size, hidden_act="gelu"):
    """(chunks, A) -> (chunks, O); state_dict names 0.weight, 0.bias, 2.weight, 2.bias."""
    return nn.Sequential(nn.Linear(input_size, intermediate_size), activation(hidden_act),
                         nn.Linear(intermediate_size, output_size))
