"""Regenerate examples/*.jpg from scikit-image's bundled photos: python tests/make_examples.py"""

from pathlib import Path

from PIL import Image
from skimage import data

OUT = Path(__file__).resolve().parents[1] / "examples"

if __name__ == "__main__":
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        img = Image.fromarray(getattr(data, name)()).convert("L")
        img.thumbnail((512, 512))
        img.save(OUT / f"{name}_gray.jpg", quality=92)
