"""`voicecap models`: the catalog, joining base from its two PyPI parts, checksums, and resolving names."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from tests.support.cli import run_cli, run_json
from tests.support.models import install_base
from transcribe.model_paths import ModelNotFoundError, resolve_ct2_model, resolve_openai_model
from transcribe.models import CATALOG, ModelInstallError, file_sha256, install_model, list_models


@pytest.fixture(scope="module")
def base_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("models-data")
    install_base(data_dir)
    return data_dir


def test_install_joins_the_parts_and_every_file_has_its_pinned_sha256(base_data_dir: Path) -> None:
    target = base_data_dir / "models" / "base"
    for file in CATALOG["base"].files:
        assert file_sha256(target / file.name) == file.sha256
    assert (target / "model.bin").stat().st_size == 145_217_532
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]


def test_install_again_is_a_no_op_that_keeps_the_files(base_data_dir: Path) -> None:
    model_bin = base_data_dir / "models" / "base" / "model.bin"
    before = model_bin.stat().st_mtime_ns
    install_model("base", base_data_dir, pip=False)
    assert model_bin.stat().st_mtime_ns == before


def test_a_file_that_fails_its_checksum_is_never_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = CATALOG["base"]
    config = next(f for f in base.files if f.name == "config.json")
    damaged = dataclasses.replace(base, files=(dataclasses.replace(config, sha256="0" * 64),))
    monkeypatch.setitem(CATALOG, "base", damaged)
    with pytest.raises(ModelInstallError, match=r"config.json: sha256 56a6d8.* is not the pinned 0{64}"):
        install_model("base", tmp_path, pip=False)
    assert os.listdir(tmp_path / "models" / "base") == []  # no config.json, no temp file


def test_missing_packages_are_named_with_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = dataclasses.replace(CATALOG["base"], packages=("voicecap-no-such-model-part==1.0",))
    monkeypatch.setitem(CATALOG, "base", absent)
    with pytest.raises(ModelInstallError, match=r"pip install voicecap-no-such-model-part==1\.0"):
        install_model("base", tmp_path, pip=False)
    assert not (tmp_path / "models").exists()


def test_unknown_model_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelInstallError, match=r"unknown model 'huge'; known: tiny\.en, base"):
        install_model("huge", tmp_path)


def test_model_names_resolve_to_local_directories_and_never_to_a_hub(
    base_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.settings import reset_settings_cache

    monkeypatch.setenv("VOICECAP_DATA_DIR", str(base_data_dir))
    reset_settings_cache()
    assert resolve_ct2_model("base") == str(base_data_dir / "models" / "base")
    assert resolve_openai_model("base").kind == "ct2_dir"
    assert Path(resolve_ct2_model("tiny.en"), "model.bin").is_file()

    monkeypatch.setenv("VOICECAP_DATA_DIR", str(tmp_path))  # nothing installed here
    reset_settings_cache()
    with pytest.raises(ModelNotFoundError, match=r"run `voicecap models install base`"):
        resolve_ct2_model("base")
    reset_settings_cache()


def test_list_reports_what_is_installed(base_data_dir: Path, tmp_path: Path) -> None:
    installed = {s.model.name: s.installed for s in list_models(base_data_dir)}
    assert installed == {"tiny.en": True, "base": True}
    assert {s.model.name: s.installed for s in list_models(tmp_path)}["base"] is False


def test_cli_install_then_list_json(base_data_dir: Path, tmp_path: Path) -> None:
    env = {"VOICECAP_DATA_DIR": str(tmp_path)}
    before = run_json("models", "list", env=env)
    assert before["default"] == "tiny.en"
    by_name = {m["name"]: m for m in before["models"]}
    assert by_name["base"]["installed"] is False
    assert by_name["base"]["multilingual"] is True and by_name["tiny.en"]["languages"] == "en"
    assert by_name["base"]["licence"] == "MIT" and by_name["base"]["size_mb"] == 145

    installed = run_json("models", "install", "base", "--no-pip", env=env)
    assert installed["installed"] is True and installed["path"] == str(tmp_path / "models" / "base")
    after = {m["name"]: m for m in run_json("models", "list", env=env)["models"]}
    assert after["base"]["installed"] is True
    assert "sha256 verified" in run_cli("models", "install", "base", "--no-pip", env=env).stdout


def test_cli_install_of_an_unknown_model_fails_clearly(tmp_path: Path) -> None:
    result = run_cli("models", "install", "large-v9", env={"VOICECAP_DATA_DIR": str(tmp_path)}, check=False)
    assert result.returncode == 1
    assert "unknown model 'large-v9'" in result.stderr
