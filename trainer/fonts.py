"""The machine fonts printed text is rendered from: the Trainer trains on printed digits and
letters (trainer/printed.py) and the benchmark measures the model on printed digits
(components/data/photos.py). One list in trainer/, which components may import (the trainer
never imports components). `make fonts` installs them where they are missing."""

from pathlib import Path

FONT_DIR = Path("/usr/share/fonts/truetype")


def font_files(font_dir: Path = FONT_DIR) -> list[Path]:
    """Every TrueType file under `font_dir`, sorted so that a seed picks the same fonts on every
    run; empty where there is no such folder."""
    return sorted(font_dir.rglob("*.ttf"))


if __name__ == "__main__":  # `make fonts`: exits 1, naming the folder, where there are none
    if not font_files():
        raise SystemExit(f"No TrueType fonts under {FONT_DIR}")
