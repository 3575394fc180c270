"""IMAGE_PROFILE: how the data's pictures become the network's input, decided before any
component runs and handed to Transform and the Trainer (trainer/features.py's ImageProfile).

`digits` is MNIST's form: grey ink on plain paper, normalised to 28x28x1. `photos` keeps colour
when the data has it and the aspect of every picture, at a size taken from the data. `auto`
looks at a spread sample of the training pictures: colour makes photos; grey ink on plain paper
(a uniform border, a little contrasting ink) makes digits; other grey pictures are grey photos.
The MNIST sample and IDX files hold digits. Class folders that look like the other profile are
named, so that a forced profile that throws their colour away, or crops their objects as ink,
does not go unnoticed.
"""

import dataclasses
import glob
from pathlib import Path

import numpy as np
from PIL import Image

from components.splits import TEST
from pipeline.data_source import SPAN_FOLDER, DataSource, latest_span_folder
from pipeline.settings import Settings, SettingsError
from trainer.backbones import missing_weights
from trainer.features import DIGITS, IMAGE_SUFFIXES, PHOTOS, ImageProfile

AUTO = "auto"
PER_CLASS = 24  # pictures looked at per class folder, spread over its sorted files
MIN_PHOTO_SIDE = 32
LOOK_SIDE = 64  # pictures are looked at shrunk to this (bounded work, and enough to judge)
COLOUR_SPREAD, COLOUR_PIXELS = 0.1, 0.05  # channels this far apart on this share: colour
# Ink on paper: the border's 90th percentile within PAPER_SPREAD of its median (plain paper),
# and between 0.5 % and INK_SHARE of the pixels INK_CONTRAST away from it.
PAPER_SPREAD, INK_CONTRAST, INK_SHARE = 0.12, 0.25, 0.4
COLOUR_DATA, DIGIT_DATA = 0.1, 0.8  # shares of the sample that decide colour, and digits


@dataclasses.dataclass(frozen=True)
class Look:
    """What one picture looks like."""

    height: int
    width: int
    colour: bool
    ink_on_paper: bool


def look_at(path: Path) -> Look | None:
    """None for a file that is not a readable picture: ImageExampleGen skips and counts those."""
    try:
        with Image.open(path) as picture:
            height, width = picture.height, picture.width
            picture = picture.convert("RGB")
            picture.thumbnail((LOOK_SIDE, LOOK_SIDE))
            rgb = np.asarray(picture, np.float32) / 255
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    colour = np.mean(rgb.max(-1) - rgb.min(-1) > COLOUR_SPREAD) > COLOUR_PIXELS
    grey = rgb.mean(-1)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = np.median(border)
    plain = np.percentile(np.abs(border - paper), 90) < PAPER_SPREAD
    ink = np.mean(np.abs(grey - paper) > INK_CONTRAST)
    return Look(height, width, bool(colour), bool(plain and 0.005 < ink < INK_SHARE))


def training_patterns(source: DataSource) -> list[str]:
    """The file patterns of the splits training reads (not TEST_DATA's nor the test split)."""
    return [pattern for split, pattern in source.splits.items() if split != TEST]


def sample_pictures(source: DataSource) -> dict[str, list[Path]]:
    """Up to PER_CLASS training pictures per class folder of the newest span, spread over each
    folder's sorted files."""
    folder, _ = latest_span_folder(source.root)
    span = SPAN_FOLDER.fullmatch(folder.name)
    by_class: dict[str, list[Path]] = {}
    for pattern in training_patterns(source):
        pattern = pattern.replace("{SPAN}", span[1] if span else "")
        for name in sorted(glob.glob(str(source.root / pattern))):
            path = Path(name)
            if path.suffix.lower() in IMAGE_SUFFIXES:
                by_class.setdefault(path.parent.name, []).append(path)
    return {
        name: paths[:: max(1, len(paths) // PER_CLASS)][:PER_CLASS]
        for name, paths in sorted(by_class.items())
    }


@dataclasses.dataclass(frozen=True)
class Decision:
    profile: ImageProfile
    reason: str  # why this profile (auto), or what the setting chose
    mismatches: tuple[str, ...] = ()  # class folders that look like the other profile

    def describe(self) -> str:
        shape = "x".join(map(str, self.profile.shape))
        return f"Image profile: {self.profile.name}, input {shape} ({self.reason})"


def median_side(looks: list[Look]) -> int:
    """The median picture's longer side (0 for none)."""
    return int(np.median([max(look.height, look.width) for look in looks])) if looks else 0


def photo_side(median: int, max_side: int) -> int:
    """A median side in multiples of 8, within MIN_PHOTO_SIDE..max_side."""
    return int(min(max_side, max(MIN_PHOTO_SIDE, 8 * round(median / 8))))


def mismatched(looks: dict[str, list[Look]], profile: str) -> tuple[str, ...]:
    """Class folders whose pictures mostly look like the other profile."""
    found = []
    for name, seen in looks.items():
        if not seen:  # no readable picture: ImageExampleGen names the files
            continue
        colour = np.mean([look.colour for look in seen])
        digits = np.mean([look.ink_on_paper and not look.colour for look in seen])
        if profile == DIGITS and colour >= 0.5:
            found.append(f"{name} (colour photos)")
        elif profile == DIGITS and digits < 0.5:
            found.append(f"{name} (photos, not ink on plain paper)")
        elif profile == PHOTOS and digits >= 0.5:
            found.append(f"{name} (grey ink on plain paper, like digits)")
    return tuple(found)


def decide(source: DataSource, settings: Settings) -> Decision:
    """The profile IMAGE_PROFILE names, or (auto) the one the training pictures call for."""
    wanted = settings.image_profile
    patterns = training_patterns(source)
    if source.kind == "tfrecords" or not all(p.endswith("*/*") for p in patterns):
        # The MNIST sample and IDX files: grey digits of 28x28.
        if wanted == PHOTOS:
            profile = ImageProfile(PHOTOS, MIN_PHOTO_SIDE, MIN_PHOTO_SIDE, 1)
            return Decision(profile, "IMAGE_PROFILE=photos", (f"DATA={settings.data} (digits)",))
        return Decision(ImageProfile(), f"DATA={settings.data} holds digits")
    looks = {
        name: [look for look in map(look_at, paths) if look is not None]
        for name, paths in sample_pictures(source).items()
    }
    every = [look for seen in looks.values() for look in seen]
    colour = sum(look.colour for look in every)
    digits = sum(look.ink_on_paper and not look.colour for look in every)
    if wanted == AUTO:
        if not every:  # ImageExampleGen names the unreadable files and stops the run
            name, reason = DIGITS, "auto: no readable picture in the sample"
        elif colour >= COLOUR_DATA * len(every):
            name, reason = PHOTOS, f"auto: {colour} of {len(every)} sampled pictures in colour"
        elif digits >= DIGIT_DATA * len(every):
            name = DIGITS
            reason = f"auto: {digits} of {len(every)} sampled pictures grey ink on plain paper"
        else:
            name = PHOTOS
            reason = f"auto: grey pictures, {len(every) - digits} of {len(every)} not ink on paper"
    else:
        name, reason = wanted, f"IMAGE_PROFILE={wanted}"
    if name == DIGITS:
        profile = ImageProfile()
    else:
        median = median_side(every)
        side = photo_side(median, settings.photo_max_side)
        channels = 3 if colour >= COLOUR_DATA * len(every) else 1
        profile = ImageProfile(PHOTOS, side, side, channels)
        reason += f"; median longer side {median} px, PHOTO_MAX_SIDE={settings.photo_max_side}"
    return Decision(profile, reason, mismatched(looks, name))


def for_compiled_pipeline(settings: Settings) -> Decision:
    """The profile of a pipeline compiled for data this machine cannot look at (Kubeflow's
    gs:// TFRecords): digits, unless IMAGE_PROFILE=photos, then colour at PHOTO_MAX_SIDE."""
    if settings.image_profile != PHOTOS:
        return Decision(ImageProfile(), f"IMAGE_PROFILE={settings.image_profile}: digits")
    side = settings.photo_max_side
    return Decision(ImageProfile(PHOTOS, side, side, 3), "IMAGE_PROFILE=photos, PHOTO_MAX_SIDE")


def check_backbone(settings: Settings, decision: Decision, trains_here: bool = True) -> None:
    """Refuses BACKBONE, before any component runs, where the profile is not photos or, for a
    Trainer that runs on this machine, the weights are not in Keras' cache
    (trainer/backbones.py)."""
    backbone = settings.training.backbone
    if not backbone:
        return
    if decision.profile.name != PHOTOS:
        raise SettingsError(
            f"BACKBONE={backbone} fine-tunes on photos, and this run's profile is "
            f"{decision.profile.name}: set IMAGE_PROFILE=photos, or unset BACKBONE"
        )
    problem = missing_weights(backbone) if trains_here else None
    if problem:
        raise SettingsError(problem)
