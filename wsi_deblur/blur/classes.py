"""The blur classes we report, their groups, their values in label images and their colours: written once.

DBMID's four types, in label order: a label image stores a tile's class as
its index + 1, 0 being background. Mixed blur is both defocus and motion, so
each of those groups holds it.

Examples
--------
>>> BLUR_CLASSES
('in_focus', 'defocus', 'motion', 'mixed')
>>> "mixed" in DEFOCUSED and "mixed" in MOVING, LABEL_VALUES["motion"]
(True, 3)
>>> LABEL_COLORS[LABEL_VALUES["defocus"]]
(230, 80, 60, 200)
"""

from __future__ import annotations

#: The four blur types of DBMID, in label order.
BLUR_CLASSES = ("in_focus", "defocus", "motion", "mixed")
#: Classes that are blurred (restored, counted against a slide's verdict).
BLURRED = ("defocus", "motion", "mixed")
#: Classes with a defocus component, and with a motion component.
DEFOCUSED = ("defocus", "mixed")
MOVING = ("motion", "mixed")

#: Value of each class in a label image (0: background, no tissue).
LABEL_VALUES = {"background": 0, **{name: i + 1 for i, name in enumerate(BLUR_CLASSES)}}

#: RGB of each class in the blur map's PNG, GeoJSON and report.
CLASS_COLORS = {"in_focus": (46, 160, 67), "defocus": (230, 80, 60), "motion": (60, 110, 230),
                "mixed": (170, 60, 200)}
#: RGBA per label value of the OME-Zarr label image (background transparent, in focus lighter).
LABEL_COLORS = {0: (0, 0, 0, 0), **{LABEL_VALUES[name]: (*rgb, 110 if name == "in_focus" else 200)
                                    for name, rgb in CLASS_COLORS.items()}}
