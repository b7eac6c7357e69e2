import io

import numpy as np
import pytest
from PIL import Image

from memecat.data import images
from memecat.data.images import open_image
from memecat.errors import DataError


def _save(img: Image.Image, path, fmt, **kw):
    img.save(path, format=fmt, **kw)
    return path


@pytest.mark.parametrize("mode", ["CMYK", "P", "RGBA", "LA", "L", "I;16", "1"])
def test_odd_modes_become_rgb(tmp_path, mode):
    img = Image.new("RGB", (20, 10), (200, 30, 40)).convert(mode if mode != "I;16" else "I")
    if mode == "I;16":
        img = Image.fromarray(np.full((10, 20), 40000, dtype=np.uint16))
    fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    out = open_image(_save(img, tmp_path / "x.img", fmt))
    assert out.mode == "RGB" and out.size == (20, 10)


def test_alpha_is_composited_on_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    out = open_image(_save(img, tmp_path / "a.png", "PNG"))
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_jpeg_named_png_opens_by_content(tmp_path):
    path = _save(Image.new("RGB", (8, 8), "red"), tmp_path / "really_jpeg.png", "JPEG")
    assert open_image(path).size == (8, 8)


def test_animated_gif_takes_first_frame(tmp_path):
    frames = [Image.new("P", (6, 6), c) for c in (1, 2, 3)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert open_image(path).size == (6, 6)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (30, 10), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif)
    assert open_image(path).size == (10, 30)


@pytest.mark.parametrize("content,problem", [
    (b"", "empty"),
    (b"this is not an image at all", "not a readable image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image"),
])
def test_bad_files_are_one_line_errors_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        open_image(path)
    assert str(path) in str(err.value) and problem in str(err.value) and "\n" not in str(err.value)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "green").save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[:200])
    with pytest.raises(DataError, match="cut.jpg"):
        open_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        open_image(tmp_path / "nope.png")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    path = _save(Image.new("RGB", (20, 20)), tmp_path / "big.png", "PNG")
    with pytest.raises(DataError, match="pixel cap"):
        open_image(path)


def test_no_broken_image_escapes_as_anything_but_a_one_line_data_error(tmp_path):
    from broken_images import build_corpus

    corpus = build_corpus(tmp_path / "broken")
    decoded = refused = 0
    for path in corpus:
        try:
            image = open_image(path)
        except DataError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc), str(exc)
            refused += 1
        else:  # a flip that lands in pixel data still decodes: a picture, not an error
            assert image.mode == "RGB" and image.size[0] * image.size[1] <= images.MAX_PIXELS
            decoded += 1
    assert refused > len(corpus) // 2 and len(corpus) > 200


def test_claimed_billions_of_pixels_are_refused_from_the_header(tmp_path):
    from broken_images import _png_claiming

    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(100_000, 100_000))
    with pytest.raises(images.ImageTooLarge, match="over the 40,000,000-pixel cap"):
        open_image(path)


def test_a_huge_jpeg_decodes_at_a_reduced_scale(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (8000, 6000), "red").save(path, "JPEG")
    out = open_image(path)
    width, height = out.size
    assert images.JPEG_DRAFT_PIXELS / 4 <= width * height <= images.JPEG_DRAFT_PIXELS and width * 3 == height * 4
