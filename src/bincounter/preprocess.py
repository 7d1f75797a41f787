"""Image decoding and preprocessing shared by training and serving.

Torch-free on purpose (PIL + numpy): the serving image has no torch, and
training wraps this function's output into tensors, so both sides feed the
model exactly the same numbers.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ABID photos are about 0.3 MP; 40 MP admits any real camera and refuses
# decompression bombs before a single pixel is decoded.
DEFAULT_MAX_PIXELS = 40_000_000


class ImageDecodeError(ValueError):
    """The bytes are not an image PIL can decode (corrupt, truncated, unknown)."""


class ImageTooLargeError(ValueError):
    """The image declares more pixels than allowed (decompression bomb guard)."""


@dataclass(frozen=True)
class PreprocessSpec:
    image_size: int = 224
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)

    def __post_init__(self) -> None:
        if self.image_size < 8:
            raise ValueError(f"image_size {self.image_size} is too small")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need three values, std > 0")

    def to_dict(self) -> dict:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessSpec":
        return cls(int(d["image_size"]), tuple(map(float, d["mean"])), tuple(map(float, d["std"])))


def decode_image(data: bytes, image_size: int | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode bytes to an RGB image, checking the declared size before decoding.

    With ``image_size`` a JPEG is decoded at the smallest DCT scale that is
    still at least that large (PIL's draft mode): several times faster for
    large photos, and identical in training and serving since both call this.
    """
    if not data:
        raise ImageDecodeError("empty image body")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(str(exc)) from exc
    except Exception as exc:  # PIL raises many types for garbage input
        raise ImageDecodeError(f"not a decodable image: {exc}") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image declares {width}x{height} = {width * height} pixels, limit is {max_pixels}")
    if width < 1 or height < 1:
        raise ImageDecodeError(f"image declares an empty size {width}x{height}")
    try:
        if image_size and image.format == "JPEG":
            image.draft("RGB", (image_size, image_size))
        image.load()
        return image.convert("RGB")
    except Exception as exc:  # truncated data, bad huffman tables, ...
        raise ImageDecodeError(f"image data is corrupt or truncated: {exc}") from exc


def preprocess(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """RGB PIL image -> normalised float32 array of shape (3, S, S)."""
    size = spec.image_size
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    arr = np.asarray(image, dtype=np.float32) * np.float32(1 / 255)
    arr = (arr - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def preprocess_bytes(data: bytes, spec: PreprocessSpec,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    return preprocess(decode_image(data, spec.image_size, max_pixels), spec)
