"""Tiny real models built offline in seconds: a Hugging Face llama and the same model as GGUF.

The Hub is not needed: a byte-level BPE tokenizer is trained on a built-in corpus, a 2-layer
`LlamaForCausalLM` gets seeded random weights, and the same weights are written as a GGUF file
that `llama_cpp.Llama` loads. Greedy decoding gives the same tokens in transformers and llama.cpp.

The weights are random but shaped so that outputs stay readable: one hidden dimension carries a
constant through the residual stream, and the output rows of tokens that are not printable ASCII
and of special tokens other than EOS weigh it strongly negative, so the model never emits broken
UTF-8, control characters, padding or chat markers, and EOS gets a small bias so that some
generations end early and most do not. The output rows are also made orthogonal to the main
directions shared by all hidden states, which random networks otherwise collapse onto (every
prompt would then continue with the same token).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from distilabel_llm.errors import MissingExtraError

__all__ = [
    "CHAT_TEMPLATE",
    "TinyModels",
    "build_hf_model",
    "build_tokenizer",
    "convert_to_gguf",
    "default_cache_dir",
    "ensure_tiny_models",
]

# Bump when the recipe changes in a way the hash below cannot see (code, not constants).
KIT_VERSION = "1"

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
_ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
SPECIAL_TOKENS = [PAD, BOS, EOS, *_ROLE_TOKENS]

# Zephyr-style. It writes the BOS token itself, as Llama 3 and Mistral templates do, so
# backends must not add a second one when they tokenize the rendered text.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

_RECIPE: Dict[str, Any] = {
    "vocab_size": 600,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,  # llama.cpp warns when n_ctx (2048 by default) exceeds it
    "rms_norm_eps": 1e-5,
    "seed": 1234,
    "constant": 4.0,  # value of the constant hidden dimension
    "suppress": -200.0,  # its output weight for tokens the model must never emit
    "shared_directions": 3,  # hidden-state directions removed from the output rows
    "eos_bias": -0.02,  # its output weight for EOS: some generations end early, most do not
}

_CORPUS = """\
A dataset is a list of rows, and each row holds the inputs of a task.
The model reads the instruction and writes an answer, one token at a time.
Generation runs on local hardware or through an API, in threads, processes and pools.
A pool spreads the rows over several processes, one per GPU, and never loses a row.
Write a short poem about the sea. The sea is wide and the waves are grey and slow.
Explain why the sky is blue. Sunlight is scattered by the air, and blue light the most.
Give three ideas for a dinner party: a soup of green peas, fresh bread, and a lemon tart.
Summarize the text below in one sentence. Rate each answer from 1 to 10 and explain why.
The quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun.
What is the capital of France? Paris is the capital and the largest city of France.
How many days are in a week? There are seven days in a week, and twelve months in a year.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024; symbols: ( ) [ ] { } < > = + - * / % # @ & ! ?
Python code: def add(a, b): return a + b  # adds two numbers; print("hello, world")
You are a helpful assistant. Answer the question as well as you can, and be honest.
The teacher asked the students to read the book, and they wrote notes about each chapter.
Rain falls on the hills, rivers run to the sea, and the farmers plant their fields in spring.
A good answer is correct, clear, and short; a bad answer is wrong, vague, or far too long.
Models learn from data; data must be clean, varied, and labelled with care by people.
"""


@dataclass(frozen=True)
class TinyModels:
    """Paths of the built tiny models.

    Attributes:
        hf_path: a directory `AutoModelForCausalLM`/`AutoTokenizer.from_pretrained` load.
        gguf_path: a GGUF file `llama_cpp.Llama(model_path=...)` loads.
    """

    hf_path: Path
    gguf_path: Path


def default_cache_dir() -> Path:
    """`$DISTILABEL_LLM_CACHE`, else `~/.cache/distilabel_llm/tiny-models`."""
    env = os.environ.get("DISTILABEL_LLM_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "distilabel_llm" / "tiny-models"


def ensure_tiny_models(cache_dir: Optional[Union[str, Path]] = None) -> TinyModels:
    """Returns the tiny models, building them into `cache_dir` first if they are not there.

    Builds are keyed by a hash of the recipe and library versions, so a changed recipe builds
    anew; concurrent callers are safe because each builds in a temporary directory and renames
    it into place atomically.

    Args:
        cache_dir: where to keep the models; defaults to `default_cache_dir()`.

    Raises:
        MissingExtraError: if the `kit` extra (tokenizers, transformers, torch, gguf) is missing.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    final = root / f"tiny-llama-v{KIT_VERSION}-{_recipe_hash()}"
    models = TinyModels(hf_path=final / "hf", gguf_path=final / "tiny-llama.gguf")
    if final.is_dir():
        return models
    for package in ("gguf", "tokenizers", "torch", "transformers"):
        _require(package)  # fail before building anything, cheapest imports first
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        build_hf_model(staging / "hf")
        convert_to_gguf(staging / "hf", staging / "tiny-llama.gguf")
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():  # not a lost race with another builder: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return models


def build_tokenizer(directory: Union[str, Path]) -> Any:
    """Trains the byte-level BPE tokenizer and saves it as a Hugging Face fast tokenizer.

    Returns:
        The `PreTrainedTokenizerFast`, with chat template and BOS/EOS/pad tokens.
    """
    tokenizers = _require("tokenizers")
    transformers = _require("transformers")
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_RECIPE["vocab_size"],
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # any input text can be encoded
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS.splitlines(), trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=_ROLE_TOKENS,
        chat_template=CHAT_TEMPLATE,
        model_max_length=_RECIPE["max_position_embeddings"],
    )
    directory = Path(directory)
    fast.save_pretrained(directory)
    # transformers 5 names its own backend class here, which transformers 4 cannot load.
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.setdefault("chat_template", CHAT_TEMPLATE)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
    return fast


def build_hf_model(directory: Union[str, Path]) -> Path:
    """Builds the tokenizer and a tiny `LlamaForCausalLM` with seeded weights into `directory`."""
    torch = _require("torch")
    transformers = _require("transformers")
    directory = Path(directory)
    tokenizer = build_tokenizer(directory)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=_RECIPE["hidden_size"],
        intermediate_size=_RECIPE["intermediate_size"],
        num_hidden_layers=_RECIPE["num_hidden_layers"],
        num_attention_heads=_RECIPE["num_attention_heads"],
        num_key_value_heads=_RECIPE["num_key_value_heads"],
        max_position_embeddings=_RECIPE["max_position_embeddings"],
        rms_norm_eps=_RECIPE["rms_norm_eps"],
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = transformers.LlamaForCausalLM(config)
    model.load_state_dict(_seeded_weights(torch, model, tokenizer))
    _remove_shared_directions(torch, model, tokenizer)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    progress = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # a 2 MB save needs no progress bar
    try:
        model.save_pretrained(directory)
    finally:
        if progress:
            transformers.utils.logging.enable_progress_bar()
    return directory


def convert_to_gguf(hf_dir: Union[str, Path], gguf_path: Union[str, Path]) -> Path:
    """Writes a llama model saved by `build_hf_model` as an F32 GGUF file.

    Supports llama-architecture checkpoints in one safetensors file with a byte-level BPE
    tokenizer, which is what the kit builds; it is not a general converter.
    """
    gguf = _require("gguf")
    import numpy as np
    from safetensors.numpy import load_file

    hf_dir, gguf_path = Path(hf_dir), Path(gguf_path)
    config = json.loads((hf_dir / "config.json").read_text())
    if config.get("model_type") != "llama":
        raise ValueError(
            f"convert_to_gguf converts llama models, not {config.get('model_type')!r}."
        )
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config["hidden_size"] // n_head
    writer = gguf.GGUFWriter(gguf_path, arch="llama")
    writer.add_name("distilabel_llm tiny llama")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    _add_tokenizer(gguf, writer, hf_dir)

    weights = load_file(str(hf_dir / "model.safetensors"))
    for name, tensor in sorted(weights.items()):
        tensor = tensor.astype(np.float32)
        if name.endswith("q_proj.weight"):
            tensor = _permute_rope(tensor, n_head)
        elif name.endswith("k_proj.weight"):
            tensor = _permute_rope(tensor, n_kv)
        writer.add_tensor(_gguf_tensor_name(name), tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return gguf_path


# Internals.


def _require(package: str) -> Any:
    try:
        return import_module(package)
    except ImportError as error:
        raise MissingExtraError(package, "kit") from error


def _recipe_hash() -> str:
    versions = {}
    for package in ("tokenizers", "transformers", "gguf"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    blob = json.dumps([_RECIPE, _CORPUS, SPECIAL_TOKENS, CHAT_TEMPLATE, versions], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _seeded_weights(torch: Any, model: Any, tokenizer: Any) -> Dict[str, Any]:
    """Random weights from a fixed seed, independent of how transformers initialises models."""
    generator = torch.Generator().manual_seed(_RECIPE["seed"])
    weights = {}
    for name, param in sorted(model.state_dict().items()):
        if name.endswith("norm.weight"):
            weights[name] = torch.ones_like(param)
        elif param.dim() == 2:
            fan_in = param.shape[1]
            weights[name] = torch.randn(param.shape, generator=generator) / fan_in**0.5
        else:
            weights[name] = torch.zeros_like(param)
    # Dimension 0 of the residual stream is a constant: set by the embeddings, and never
    # written by attention or MLP outputs.
    weights["model.embed_tokens.weight"][:, 0] = _RECIPE["constant"]
    for name in weights:
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            weights[name][0, :] = 0.0
    # Output rows read that constant to keep some tokens out.
    lm_head = weights["lm_head.weight"]
    lm_head[:, 0] = 0.0
    lm_head[_never_emitted_ids(tokenizer), 0] = _RECIPE["suppress"]
    lm_head[tokenizer.eos_token_id, 0] = _RECIPE["eos_bias"]
    return weights


def _remove_shared_directions(torch: Any, model: Any, tokenizer: Any) -> None:
    """Projects out of the output rows the top principal directions of the corpus' states."""
    with torch.no_grad():
        inputs = tokenizer(_CORPUS, return_tensors="pt")
        hidden = model(**inputs, output_hidden_states=True).hidden_states[-1][0]
        hidden[:, 0] = 0.0  # the constant dimension stays as it is
        directions = torch.linalg.svd(hidden, full_matrices=False).Vh
        directions = directions[: _RECIPE["shared_directions"]]
        lm_head = model.lm_head.weight
        lm_head -= (lm_head @ directions.T) @ directions


_PRINTABLE = {ord("\n"), *range(0x20, 0x7F)}


def _never_emitted_ids(tokenizer: Any) -> List[int]:
    """Special tokens other than EOS, and tokens that are not printable ASCII text."""
    ids = [i for i in tokenizer.all_special_ids if i != tokenizer.eos_token_id]
    byte_decoder = {char: byte for byte, char in _bytes_to_unicode().items()}
    for token, token_id in tokenizer.get_vocab().items():
        if token_id in ids or token in SPECIAL_TOKENS:
            continue
        if any(byte_decoder.get(char, -1) not in _PRINTABLE for char in token):
            ids.append(token_id)
    return sorted(ids)


def _bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's byte to printable character table used by byte-level BPE vocabularies."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def _rope_theta(config: Dict[str, Any]) -> float:
    # transformers 5 nests it in `rope_parameters`; 4 keeps `rope_theta` at the top.
    parameters = config.get("rope_parameters") or {}
    return float(parameters.get("rope_theta", config.get("rope_theta", 10000.0)))


def _permute_rope(weights: Any, n_head: int) -> Any:
    """llama.cpp's rotary layout for Q/K rows (as its `convert_hf_to_gguf.py` does)."""
    shape = weights.shape
    return (
        weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:])
        .swapaxes(1, 2)
        .reshape(shape)
    )


_LAYER_TENSORS = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_GLOBAL_TENSORS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def _gguf_tensor_name(name: str) -> str:
    if name in _GLOBAL_TENSORS:
        return _GLOBAL_TENSORS[name]
    _, _, layer, rest = name.split(".", 3)  # model.layers.{i}.{rest}
    module, _, kind = rest.rpartition(".")
    if module not in _LAYER_TENSORS:
        raise ValueError(f"convert_to_gguf does not know the llama tensor {name!r}.")
    return f"blk.{layer}.{_LAYER_TENSORS[module]}.{kind}"


def _add_tokenizer(gguf: Any, writer: Any, hf_dir: Path) -> None:
    tokenizer_json = json.loads((hf_dir / "tokenizer.json").read_text())
    model = tokenizer_json["model"]
    if model.get("type") != "BPE":
        raise ValueError("convert_to_gguf needs a byte-level BPE tokenizer.")
    added = {token["id"]: token for token in tokenizer_json.get("added_tokens", [])}
    by_id = {token_id: token for token, token_id in model["vocab"].items()}
    by_id.update({token_id: token["content"] for token_id, token in added.items()})
    tokens, types = [], []
    for token_id in range(len(by_id)):
        tokens.append(by_id[token_id])
        if token_id not in added:
            types.append(gguf.TokenType.NORMAL)
        elif added[token_id].get("special"):
            types.append(gguf.TokenType.CONTROL)
        else:
            types.append(gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    config = json.loads((hf_dir / "tokenizer_config.json").read_text())
    ids = {token: token_id for token_id, token in by_id.items()}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(ids[config.get("bos_token", BOS)])
    writer.add_eos_token_id(ids[config.get("eos_token", EOS)])
    writer.add_pad_token_id(ids[config.get("pad_token", PAD)])
    writer.add_add_bos_token(True)  # the tokenizer's post-processor adds BOS
    writer.add_add_eos_token(False)
    template_file = hf_dir / "chat_template.jinja"
    template = template_file.read_text() if template_file.exists() else config["chat_template"]
    writer.add_chat_template(template)
