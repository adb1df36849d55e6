"""Reading portrait images: any mode (RGBA, grayscale, CMYK, palette), EXIF orientation applied."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MoDAError

MIN_SIDE = 64
MAX_PIXELS = 64_000_000  # larger images are refused before decoding (decompression bombs)
MAX_DIM = 1280  # LivePortrait's source_max_dim: longer sides are scaled down


def load_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB. Transparent pixels are composited on white."""
    path = Path(path)
    if not path.is_file():
        raise MoDAError(f"image not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise MoDAError(
                        f"image {path} is {image.width}x{image.height}; give one under {MAX_PIXELS // 1_000_000} megapixels"
                    )
                oriented = ImageOps.exif_transpose(image)
                oriented.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MoDAError(f"cannot read {path} as an image ({exc}); give a JPEG, PNG or WebP portrait") from exc
    except OSError as exc:
        raise MoDAError(f"image {path} is corrupt or truncated ({exc}); re-export it") from exc
    return to_rgb(oriented, path)


def to_rgb(image: Image.Image, name: str | Path = "image") -> np.ndarray:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # high bit-depth greyscale: scale to 8 bits by its own range (convert("RGB") would clip it)
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        scaled = np.nan_to_num((values - lo) / max(hi - lo, 1e-12) * 255, nan=0.0)
        image = Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8))
    rgb = np.asarray(image.convert("RGB"))
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise MoDAError(f"{name} is {rgb.shape[1]}x{rgb.shape[0]} pixels; give a portrait at least {MIN_SIDE} px on each side")
    return rgb


def limit_size(image: np.ndarray, max_dim: int = MAX_DIM) -> np.ndarray:
    """Scale so the longer side is at most `max_dim`, then trim to even width and height (for H.264)."""
    import cv2

    height, width = image.shape[:2]
    if max(height, width) > max_dim:
        ratio = max_dim / max(height, width)
        image = cv2.resize(image, (round(width * ratio), round(height * ratio)), interpolation=cv2.INTER_AREA)
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise MoDAError(f"the image is {width}x{height} after scaling its longer side to {max_dim} px; give a portrait "
                        f"no narrower than {max_dim // MIN_SIDE}:1")
    return np.ascontiguousarray(image[: height - height % 2, : width - width % 2])
