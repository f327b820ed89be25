"""One decoding path: orientation, colour modes, and one clear error type for bad input."""

import io

import numpy as np
import pytest
from PIL import Image

from scenes import sample
from training.images import ImageError, decode_image, read_image_file


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_real_photo_decodes_to_rgb():
    (path,), _ = sample(1, classes=["sea"])
    img = decode_image(read_image_file(path), path.name)
    assert img.mode == "RGB" and img.size == (100, 100)


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    out = decode_image(_encode(img, "JPEG", exif=exif), "rotated.jpg")
    assert out.size == (20, 40)
    top = np.asarray(out)[2, 10]
    assert top[2] > 200 and top[0] < 60  # the left strip is now on top


@pytest.mark.parametrize(
    "mode,fmt",
    [("L", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("LA", "PNG"), ("1", "PNG")],
)
def test_colour_modes_become_rgb(mode, fmt):
    img = Image.new(mode, (16, 12))
    out = decode_image(_encode(img, fmt), f"x.{fmt.lower()}")
    assert out.mode == "RGB" and out.size == (16, 12)


def test_sixteen_bit_keeps_its_range():
    arr = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    out = np.asarray(decode_image(_encode(Image.fromarray(arr), "PNG"), "deep.png"))
    assert out.min() == 0 and out.max() == 255  # scaled, not clipped to white


def test_rgba_transparency_goes_on_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert tuple(np.asarray(decode_image(_encode(img, "PNG")))[0, 0]) == (255, 255, 255)


@pytest.mark.parametrize(
    "data,words",
    [
        (b"", "empty"),
        (b"%PDF-1.4 not an image", "not an image"),
        ("a string", "expected image bytes"),
    ],
)
def test_non_images_raise_one_clear_error(data, words):
    with pytest.raises(ImageError, match=words) as err:
        decode_image(data, "upload-7.jpg")
    assert "upload-7.jpg" in str(err.value)


def test_truncated_jpeg_is_refused_with_its_name():
    (path,), _ = sample(1, classes=["forest"])
    data = path.read_bytes()
    with pytest.raises(ImageError, match="truncated|corrupt") as err:
        decode_image(data[: len(data) // 2], "half.jpg")
    assert "half.jpg" in str(err.value)


def test_decompression_bomb_is_refused_before_decoding():
    bomb = _encode(Image.new("L", (9000, 9000)), "PNG")  # 81 Mpx, a few hundred kB on disk
    assert len(bomb) < 2_000_000
    with pytest.raises(ImageError, match="pixel limit"):
        decode_image(bomb, "bomb.png")


def test_oversized_file_is_refused(tmp_path):
    big = tmp_path / "huge.jpg"
    big.write_bytes(b"\0" * 1024)
    with pytest.raises(ImageError, match="limit"):
        read_image_file(big, max_bytes=100)
    with pytest.raises(ImageError, match="cannot read"):
        read_image_file(tmp_path / "missing.jpg")
