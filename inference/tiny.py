"""The dev catalog's tiny models, built from configs with fixed seeds: no model hub, no files.

``builtin:tiny-llama`` is a 2-layer ``LlamaForCausalLM`` over a byte-level tokenizer (the 256
GPT-2 byte symbols, token id == byte value, plus six Llama-3 style specials, no merges) with a
Llama-3 chat template. Two changes after the seeded init make it behave like a trained model for
the checker's statistics:

- ``lm_head`` is multiplied by ``LM_HEAD_SCALE`` (200): next-token distributions become peaked
  (mean top-1 probability about 0.93, mean entropy about 0.15 nats; a default init is nearly
  uniform, which leaves a likelihood test without power).
- the ``<|eot_id|>`` row of ``lm_head`` gets ``EOS_BIAS`` (20) times ``_EOS_DIRECTION``, the unit
  mean direction of the final hidden states along the model's own generations. Those states
  share a large common component (projection about 6 ± 1), so this lifts the EOS logit by about
  120 ± 20 where the model is "in the middle of its output" and far less right after the prompt:
  EOS becomes the likely token at some positions and stays negligible at others, like a trained
  model's end of answer, so padding that avoids EOS is detectable.

Measured natural output lengths (max_tokens 1024, 8 chat prompts not used for the calibration,
5 seeds each): at temperature 0.7 / 1.0 / 1.5, 10% / 8% / 5% end before 16 tokens, 50% / 53% /
65% end between 16 and 512, 12% / 12% / 8% between 513 and 1024, and 28% / 28% / 22% never emit
EOS within 1024 tokens; greedy (temperature 0) outputs ended after 4, 5, 73, 115, 271 and 292
tokens, 2 of 8 ran to 1024.

Everything is deterministic across processes and thread counts: the same weights (and
``weights_sha256``) every time for a given transformers version. Change a constant here and bump
``TINY_LLAMA_VERSION`` (or ``TINY_SD_VERSION``): the weights are part of the dev network's
protocol, since miners and the checker must build the same model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from protocol.prompts import TOOLS_PREAMBLE

TINY_LLAMA_VERSION = 1
TINY_LLAMA_SEED = 1234
LM_HEAD_SCALE = 200.0
EOS_BIAS = 20.0
HIDDEN_SIZE = 128
NUM_HEADS = 2  # head_dim 64: the smallest head size vLLM's CPU attention kernel accepts
NUM_KV_HEADS = 2
NUM_LAYERS = 2
INTERMEDIATE_SIZE = 256
MAX_POSITIONS = 4096

BOS = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
PAD = "<pad>"
SPECIAL_TOKENS = (BOS, END_OF_TEXT, START_HEADER, END_HEADER, EOT, PAD)

# The Llama 3 layout, with tools in the ``hermes`` format: a system block listing them, and an
# assistant's calls as <tool_call> blocks. ``protocol.prompts.render_llama3`` renders the same
# text (the gateway counts prompt tokens with it; a test holds the two equal).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% if tools %}<|start_header_id|>system<|end_header_id|>\n\n"
    + TOOLS_PREAMBLE
    + "{% for tool in tools %}{{ '\\n' }}{{ tool | tojson }}{% endfor %}"
    "{{ '\\n' }}</tools><|eot_id|>{% endif %}"
    "{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['content'] %}{{ message['content'] }}{% endif %}"
    "{% for call in message['tool_calls'] or [] %}"
    "<tool_call>{\"name\": {{ call['function']['name'] | tojson }}, \"arguments\": "
    "{% if call['function']['arguments'] is string %}{{ call['function']['arguments'] }}"
    "{% else %}{{ call['function']['arguments'] | tojson }}{% endif %}}</tool_call>{% endfor %}"
    "<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

# Unit mean of the final hidden states along greedy generations of the seeded model (before the
# EOS change) from 8 chat prompts, 600 tokens each; 4 decimals. A constant, so that building the
# model stays cheap and bit-for-bit reproducible (no calibration pass whose float sums could
# depend on thread count or CPU).
# fmt: off
_EOS_DIRECTION = (
    0.0250, 0.0729, -0.1411, -0.0949, 0.1190, -0.1033, 0.0818, -0.0904, 0.0013, 0.0010, -0.0997,
    0.0226, 0.0356, 0.0554, 0.0577, -0.0003, -0.1347, 0.1280, 0.0605, 0.0628, 0.0120, 0.1052,
    0.1591, 0.0861, 0.0560, -0.0924, 0.0365, -0.1527, -0.1028, -0.0717, -0.0898, -0.0711, 0.1711,
    0.1096, -0.1066, 0.0508, -0.0216, 0.1522, 0.0791, -0.0288, -0.0758, 0.0389, 0.0236, -0.0262,
    -0.0770, -0.1012, 0.0125, -0.1348, 0.0625, 0.0292, -0.0325, -0.0036, 0.0331, 0.1611, -0.1081,
    -0.1326, 0.0079, -0.1979, 0.0423, 0.0056, -0.0411, 0.0058, 0.0227, 0.0209, -0.1008, -0.0284,
    0.0601, 0.0874, -0.0604, 0.0455, 0.1058, -0.1464, 0.0600, 0.0588, -0.0673, -0.0147, -0.0561,
    0.1077, 0.0419, -0.0070, 0.1258, 0.0202, 0.0719, 0.0986, 0.0391, -0.0615, 0.1591, 0.0366,
    0.1370, -0.1753, -0.0399, -0.0553, 0.1313, -0.0749, -0.0521, -0.0795, 0.0298, 0.0741, 0.1449,
    -0.0244, 0.0593, 0.0522, -0.0150, -0.0421, -0.1060, 0.2324, 0.0308, 0.0700, -0.0290, 0.0663,
    -0.0936, 0.1767, -0.0557, 0.0104, -0.0729, 0.0907, 0.0267, -0.0239, 0.0023, -0.0797, 0.1076,
    0.1694, -0.0006, -0.1057, -0.0888, 0.1419, -0.0040, 0.1637,
)
# fmt: on

TINY_SD_VERSION = 1
TINY_SD_SEED = 0
TINY_SD_SIZE = 64


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode symbols."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, codes, strict=True)}


def build_tiny_tokenizer() -> Any:
    """The byte-level tokenizer: ids 0-255 are the bytes, 256-261 the specials; encoding with
    special tokens prepends ``<|begin_of_text|>``, as Llama 3's tokenizer does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    symbols = bytes_to_unicode()
    vocab = {symbols[byte]: byte for byte in range(256)}
    for special in SPECIAL_TOKENS:
        vocab[special] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    # Like Llama 3's tokenizer: encoding with special tokens prepends <|begin_of_text|>.
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, vocab[BOS])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS, eos_token=EOT, pad_token=PAD
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_llama() -> tuple[Any, Any]:
    """``(LlamaForCausalLM, PreTrainedTokenizerFast)``, float32, in eval mode."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer()
    eot, end_of_text = tokenizer.convert_tokens_to_ids([EOT, END_OF_TEXT])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_KV_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[eot, end_of_text],
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_LLAMA_SEED)
        model = LlamaForCausalLM(config)
    model = model.to(torch.float32).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(LM_HEAD_SCALE)
        direction = torch.tensor(_EOS_DIRECTION, dtype=torch.float32)
        model.lm_head.weight[eot].add_(EOS_BIAS * direction)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[eot, end_of_text],
        pad_token_id=tokenizer.pad_token_id,
    )
    return model, tokenizer


def weights_sha256(model: Any) -> str:
    """sha256 over every tensor of a model's state dict (names and bytes), in key order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_tiny_llama(directory: str | Path) -> Path:
    """Write an HF model directory (config, safetensors, tokenizer, chat template) that
    ``AutoModelForCausalLM.from_pretrained`` and vLLM load."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    model, tokenizer = build_tiny_llama()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# ---------------------------------------------------------------------------------------------
# Tiny Stable Diffusion


def build_tiny_clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    symbols = list(bytes_to_unicode().values())
    tokens = [
        *symbols,
        *(symbol + "</w>" for symbol in symbols),
        "<|startoftext|>",
        "<|endoftext|>",
    ]
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def build_tiny_sd() -> Any:
    """A seeded ``StableDiffusionPipeline`` (UNet 1.4 M, VAE 0.7 M, CLIP text 0.05 M parameters;
    DDIM scheduler; no safety checker) that draws 64x64 images on a CPU in about a second."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_tiny_clip_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SD_SEED)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=TINY_SD_SIZE // 2,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
        )
        vae = AutoencoderKL(
            block_out_channels=[32, 64],
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
            up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
            latent_channels=4,
            sample_size=TINY_SD_SIZE,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                hidden_size=32,
                intermediate_size=37,
                layer_norm_eps=1e-05,
                num_attention_heads=4,
                num_hidden_layers=5,
                vocab_size=len(tokenizer),
            )
        )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def save_tiny_sd(directory: str | Path) -> Path:
    """Write a diffusers pipeline directory that ``StableDiffusionPipeline.from_pretrained``
    (and ``AutoPipelineForText2Image``) loads."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    build_tiny_sd().save_pretrained(path)
    return path
