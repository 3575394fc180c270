"""The machine fonts printed text is rendered from: the Trainer trains on printed digits and
letters (trainer/printed.py) and the benchmark measures the model on printed digits
(components/data/photos.py). One list in trainer/, which components may import (the trainer
never imports components). `make fonts` installs them where they are missing."""

from pathlib import Path

FONT_DIR = Path("/usr/share/fonts/truetype")
# Debian's fonts-dejavu-core and fonts-liberation (38 fonts): the Trainer's printed digits and
# the benchmark's figures come from these, so `make fonts` installs whichever is missing.
FAMILIES = ("dejavu", "liberation")


def font_files(font_dir: Path = FONT_DIR) -> list[Path]:
    """Every TrueType file under `font_dir`, sorted so that a seed picks the same fonts on every
    run; empty where there is no such folder."""
    return sorted(font_dir.rglob("*.ttf"))


if __name__ == "__main__":  # `make fonts`: exits 1, naming the families that are missing
    missing = [family for family in FAMILIES if not font_files(FONT_DIR / family)]
    if missing:
        raise SystemExit(f"No {' or '.join(missing)} TrueType fonts under {FONT_DIR}")
