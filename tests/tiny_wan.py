"""Tiny seeded random Wan pipelines, written as diffusers folders, for tests and smoke benchmarks.

:func:`build_tiny_wan_models` builds them the way diffusers' own Wan tests build theirs (a
2-layer ``WanTransformer3DModel``, a 3-channel ``AutoencoderKLWan``, a 1-layer UMT5 encoder from a
config, a word-level tokenizer made offline with the ``tokenizers`` library, a tiny CLIP vision
encoder) and saves them with ``save_pretrained`` under the folder names
:data:`beatframe.models.wan_loader.DEFAULT_MODELS` expects, so a ``BEATFRAME_MODELS_DIR`` pointing at the
root serves them to ``wan-t2v`` and ``wan-i2v`` with no ``model=`` given. Nothing is downloaded;
the weights are random, so the footage is noise: they exercise the code, not the picture.

Import it as ``from tiny_wan import build_tiny_wan_models`` (pytest puts ``tests/`` on
``sys.path``, as for ``from conftest import ...``). torch, diffusers and transformers are imported
when it is called, not at import. No environment variables are read.
"""

from __future__ import annotations

from pathlib import Path

from beatframe.models.wan_loader import DEFAULT_MODELS

#: words of the tiny tokenizer's vocabulary after its three special tokens (prompts may use
#: ``w0`` ... ``w28``; any other word is ``<unk>``)
VOCAB_WORDS = 29


def _tokenizer():
    """A word-level fast tokenizer made offline, and its vocabulary size."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "</s>", "<unk>"] + [f"w{i}" for i in range(VOCAB_WORDS)]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>"), len(words)


def build_tiny_wan_models(root: Path, *, seed: int = 0) -> Path:
    """Write a tiny text-to-video and a tiny image-to-video Wan pipeline into ``root``.

    Parameters
    ----------
    root : pathlib.Path
        The models directory (created when missing). Receives
        ``DEFAULT_MODELS["t2v"]`` (a ``WanPipeline``) and ``DEFAULT_MODELS["i2v"]`` (a
        ``WanImageToVideoPipeline``), each with its ``model_index.json``; both share the text
        encoder, tokenizer and VAE.
    seed : int
        Seeds every component's random weights (the same seed writes the same weights).

    Returns
    -------
    pathlib.Path
        ``root``.

    Notes
    -----
    The transformers' rotary embedding covers 32 patches along each axis: frames up to 512 px a
    side (16 px a patch) and up to 125 frames (4 a latent frame); the CLIP image encoder sees
    32x32 pictures.
    """
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        UMT5Config,
        UMT5EncoderModel,
    )

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab = _tokenizer()
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=vocab, d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    common = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                  out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
                  cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    torch.manual_seed(seed)
    t2v = WanTransformer3DModel(in_channels=16, **common)
    WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=t2v,
                scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0)
                ).save_pretrained(root / DEFAULT_MODELS["t2v"])
    torch.manual_seed(seed)
    i2v = WanTransformer3DModel(in_channels=36, image_dim=4, **common)
    torch.manual_seed(seed)
    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        intermediate_size=16, patch_size=1))
    WanImageToVideoPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=i2v,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(crop_size=32, size=32)
    ).save_pretrained(root / DEFAULT_MODELS["i2v"])
    return root
