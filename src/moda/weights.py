"""Reading weight files safely, and fetching released weights from the Hugging Face hub.

Checkpoints are read with safetensors or `torch.load(weights_only=True)`: loading never runs pickled code.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .errors import MoDAError, WeightsNotFoundError

StateDict = dict[str, torch.Tensor]


def read_state_dict(path: str | Path) -> StateDict:
    """Tensors from a .safetensors file, or from a .pth/.pt/.bin that holds only tensors and plain containers."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weight file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except SafetensorError as exc:
            raise MoDAError(f"{path} is not a valid safetensors file ({exc}); download it again") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise MoDAError(
            f"{path} holds objects other than tensors, which moda refuses to unpickle; convert it to safetensors"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise MoDAError(f"{path} is not a readable PyTorch checkpoint ({exc}); download it again") from exc
    if not isinstance(obj, dict):
        raise MoDAError(f"{path} holds a {type(obj).__name__}, expected a dict of tensors")
    return obj


def hub_download(repo_id: str, filename: str, local_dir: str | Path) -> Path:
    """Download one file of a hub repository into `local_dir`; offline, a clear error naming that directory."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, local_dir=str(local_dir)))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise WeightsNotFoundError(
            f"could not download {filename} from the hub repository {repo_id} ({type(exc).__name__}); "
            f"when offline, copy it to {Path(local_dir) / filename}"
        ) from exc
