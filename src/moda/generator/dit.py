"""The multi-modal talking-head DiT: motion, audio, emotion and identity fused coarse to fine."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import FinalLayer, MultiStreamBlock, SingleStreamBlock, StreamNames
from .config import DiTConfig
from .layers import AudioEmbedder, EmbedderMlp, LabelEmbedder, TimestepEmbedder, rope_tables


class TalkingHeadDiT(nn.Module):
    """Predicts the flow-matching velocity of an 80-frame motion window.

    Inputs (N frames, W audio frames per token, K encoder layers, C encoder width):
      motion     (B, N, 2*70)  per frame [prev_motion | noisy latent]
      times      (B,)          timesteps on the 0..1000 scale
      audio      (B, N, W, K, C)
      emo        (B,) int64    0..7, or 8 for the null class
      audio_cond (B, N, 63)    reference canonical keypoints; averaged over frames into one identity vector
    Output: (B, N, 70) velocity (noise - x0).
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.motion_embedder = EmbedderMlp(config.input_dim, d)
        self.identity_embedder = EmbedderMlp(config.audio_cond_dim, d)
        self.time_embedder = TimestepEmbedder(d)
        self.audio_embedder = AudioEmbedder(config.audio_input_dim, d, config.audio_tokens)
        self.emo_embedder = LabelEmbedder(config.num_emotions, d)
        four_streams = [StreamNames.motion()] + [StreamNames.context(str(i)) for i in (1, 2, 3)]
        two_streams = [StreamNames.motion(), StreamNames.context()]
        self.blocks4 = nn.ModuleList(
            MultiStreamBlock(d, config.num_heads, config.mlp_ratio, four_streams)
            for _ in range(config.four_stream_blocks)
        )
        self.blocks2 = nn.ModuleList(
            MultiStreamBlock(d, config.num_heads, config.mlp_ratio, two_streams)
            for _ in range(config.two_stream_blocks)
        )
        self.blocks = nn.ModuleList(
            SingleStreamBlock(d, config.num_heads, config.mlp_ratio) for _ in range(config.single_stream_blocks)
        )
        self.final_layer = FinalLayer(d, config.output_dim)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT initialisation: Xavier linears, N(0, 0.02) embedders, zeroed adaLN and output layers."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.emo_embedder.embedding_table.weight, std=0.02)
        for embedder in (self.motion_embedder, self.identity_embedder, self.time_embedder):
            for layer in embedder.mlp:  # Linear, SiLU, Linear
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, std=0.02)
        for name, module in self.named_modules():
            if "adaLN_modulation" in name.rsplit(".", 1)[-1] and isinstance(module, nn.Sequential):
                projection = module[1]  # SiLU, Linear
                assert isinstance(projection, nn.Linear)
                nn.init.zeros_(projection.weight)
                nn.init.zeros_(projection.bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def rope(self, tokens: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE tables for `tokens` tokens whose positions restart every seq_len (one segment per stream)."""
        positions = torch.arange(tokens, device=device) % self.config.seq_len
        cos, sin = rope_tables(positions, self.config.head_dim, self.config.rope_theta)
        return cos.to(device), sin.to(device)

    def forward(
        self,
        motion: torch.Tensor,
        times: torch.Tensor,
        audio: torch.Tensor,
        emo: torch.Tensor,
        audio_cond: torch.Tensor,
        motion_only_last_block: bool = False,
    ) -> torch.Tensor:
        """With `motion_only_last_block` the last block updates only the motion tokens, the only ones the
        output reads: the same output (to float rounding) for less work. Off, every block's full output is
        there to compare with the reference's intermediates (`moda golden-check`)."""
        frames = motion.shape[1]
        x = self.motion_embedder(motion)  # (B, N, D)
        t_emb = self.time_embedder(times)  # (B, D)
        emo_emb = self.emo_embedder(emo)  # (B, D)
        identity = self.identity_embedder(audio_cond.mean(dim=1))  # (B, D)
        audio_tokens = self.audio_embedder(audio).flatten(1, 2)  # (B, N*M, D), frame-major
        c = t_emb + emo_emb  # conditions every adaLN; audio and identity enter as tokens only

        emotion_tokens = emo_emb.unsqueeze(1).expand(-1, frames, -1)
        identity_tokens = identity.unsqueeze(1).expand(-1, frames, -1)
        rope_x = self.rope(frames, motion.device)
        rope_audio = self.rope(audio_tokens.shape[1], motion.device)

        # Four-stream blocks: emotion and identity tokens carry no positional rotation.
        streams = [x, audio_tokens, emotion_tokens, identity_tokens]
        for block in self.blocks4:
            streams = block(streams, c, [rope_x, rope_audio, None, None])

        x, context = streams[0], torch.cat(streams[1:], dim=1)
        rope_context = self.rope(context.shape[1], motion.device)
        for block in self.blocks2:
            x, context = block([x, context], c, [rope_x, rope_context])

        h = torch.cat([x, context], dim=1)
        rope_all = self.rope(h.shape[1], motion.device)
        for index, block in enumerate(self.blocks):
            last = motion_only_last_block and index == len(self.blocks) - 1
            h = block(h, c, rope_all, queries=frames if last else None)
        return self.final_layer(h[:, :frames], c)
