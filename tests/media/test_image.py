import numpy as np
import pytest
from PIL import Image

from moda.errors import MoDAError
from moda.media.image import limit_size, load_image


def test_modes_are_converted_to_rgb(tmp_path):
    rgba = Image.new("RGBA", (80, 80), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgba.save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.shape == (80, 80, 3) and image.dtype == np.uint8
    assert image[5, 5].tolist() == [255, 255, 255]  # transparent -> white
    assert image[0, 0].tolist() == [0, 0, 255]
    Image.new("L", (70, 90), 128).save(tmp_path / "g.png")
    assert load_image(tmp_path / "g.png")[0, 0].tolist() == [128, 128, 128]
    Image.new("CMYK", (70, 70), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    red = load_image(tmp_path / "c.jpg")[10, 10]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    Image.new("P", (70, 70), 3).save(tmp_path / "p.gif")
    assert load_image(tmp_path / "p.gif").shape == (70, 70, 3)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (100, 70), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 70))  # white strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(tmp_path / "r.jpg", exif=exif.tobytes())
    loaded = load_image(tmp_path / "r.jpg")
    assert loaded.shape == (100, 70, 3)
    assert loaded[:5].mean() > 200 and loaded[-5:].mean() < 50  # the strip is now on top


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "tiny", "huge"])
def test_bad_images_are_one_line_errors(tmp_path, case):
    path = tmp_path / "x.png"
    if case == "text":
        path.write_text("not an image")
    elif case == "truncated":
        Image.new("RGB", (200, 200), (9, 9, 9)).save(path)
        path.write_bytes(path.read_bytes()[:60])
    elif case == "tiny":
        Image.new("RGB", (20, 30)).save(path)
    elif case == "huge":
        Image.new("1", (9000, 9000)).save(path)
    with pytest.raises(MoDAError) as error:
        load_image(path)
    assert "\n" not in str(error.value)


def test_limit_size_caps_the_long_side_and_evens_dimensions():
    image = np.zeros((2001, 1001, 3), dtype=np.uint8)
    limited = limit_size(image)
    assert max(limited.shape[:2]) <= 1280 and limited.shape[0] % 2 == 0 and limited.shape[1] % 2 == 0
    assert limit_size(np.zeros((101, 99, 3), dtype=np.uint8)).shape == (100, 98, 3)


def test_sixteen_bit_greyscale_keeps_its_tones(tmp_path):
    ramp = (np.linspace(0, 65535, 128 * 128).reshape(128, 128)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    rgb = load_image(tmp_path / "deep.png")
    assert rgb.shape == (128, 128, 3) and rgb.min() == 0 and rgb.max() == 255
    assert 100 < rgb.mean() < 155  # a ramp, not a white sheet
