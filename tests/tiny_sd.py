"""Tiny seeded random Stable Diffusion pipelines, written as diffusers folders, for tests.

:func:`build_tiny_sd` builds one a few hundred kB large (a 2-block UNet and VAE, a 1-layer CLIP
text encoder from a config, a word-level tokenizer made offline with the ``tokenizers`` library)
and saves it with ``save_pretrained``: a text-to-image pipeline (which
``AutoPipelineForImage2Image`` loads as image-to-image) or an inpainting one;
:func:`build_tiny_upscaler` an x4 super-resolution one. Nothing is
downloaded; the weights are random, so the pictures are noise: they exercise the code, not the
picture.

Import it as ``from tiny_sd import build_tiny_sd`` (pytest puts ``tests/`` on ``sys.path``).
torch, diffusers and transformers are imported when it is called, not at import. No environment
variables are read.
"""

from __future__ import annotations

from pathlib import Path

#: the tiny tokenizer's vocabulary; any other word of a prompt is ``<unk>``
WORDS = ("<pad>", "</s>", "<unk>", "a", "neon", "cat")


def build_tiny_sd(folder: Path, *, inpainting: bool = False, seed: int = 0) -> Path:
    """Write a tiny Stable Diffusion pipeline into ``folder`` and return ``folder``.

    ``inpainting`` writes a ``StableDiffusionInpaintPipeline`` (a 9-channel UNet), else a
    ``StableDiffusionPipeline``; ``seed`` seeds the random weights.
    """
    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline,
                           StableDiffusionPipeline, UNet2DConditionModel)

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=16,
        in_channels=9 if inpainting else 4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
        attention_head_dim=4, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=[16, 32],
                        down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4,
                        norm_num_groups=8)
    text, tokenizer = _tiny_text_encoder()
    pipeline = StableDiffusionInpaintPipeline if inpainting else StableDiffusionPipeline
    pipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
        scheduler=DDIMScheduler(steps_offset=1), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder)
    return folder


def build_tiny_upscaler(folder: Path, *, seed: int = 0) -> Path:
    """Write a tiny x4 ``StableDiffusionUpscalePipeline`` into ``folder`` (a 7-channel UNet with
    noise-level class embeddings, a 3-block VAE: four times the size) and return ``folder``."""
    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionUpscalePipeline,
                           UNet2DConditionModel)

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=7, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
        attention_head_dim=4, norm_num_groups=8, num_class_embeds=100)
    vae = AutoencoderKL(block_out_channels=[16, 16, 32], down_block_types=["DownEncoderBlock2D"] * 3,
                        up_block_types=["UpDecoderBlock2D"] * 3, latent_channels=4, norm_num_groups=8)
    text, tokenizer = _tiny_text_encoder()
    StableDiffusionUpscalePipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
        low_res_scheduler=DDPMScheduler(), scheduler=DDIMScheduler(prediction_type="v_prediction"),
        max_noise_level=99).save_pretrained(folder)
    return folder


def _tiny_text_encoder():
    """A 1-layer CLIP text encoder from a config and a word-level tokenizer over :data:`WORDS`."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                        unk_token="<unk>", model_max_length=8)
    text = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=0, hidden_size=16, intermediate_size=32,
        num_attention_heads=2, num_hidden_layers=1, vocab_size=len(WORDS), max_position_embeddings=8))
    return text, tokenizer
