"""Published NAB scores to print beside ours: NAB's scorer on NAB's shipped detector results, NAB's thresholds.

From ../shared/data/nab/README.md (numenta/NAB commit ea702d7): standard / reward_low_FP_rate /
reward_low_FN_rate, on exactly the 51 public files and on realAWSCloudwatch alone. NAB does not publish the
other categories separately, so only these two scopes have anchors.
"""

from __future__ import annotations

ALL_PUBLIC = "all public"  # the 51 files of the six public categories
PUBLIC_FILES = 51

# scope -> detector -> (standard, reward_low_FP_rate, reward_low_FN_rate)
PUBLISHED: dict[str, dict[str, tuple[float, float, float]]] = {
    ALL_PUBLIC: {
        "ARTime": (77.00, 67.70, 82.26),
        "contextOSE": (75.41, 72.65, 77.84),
        "Numenta HTM": (72.97, 65.83, 76.82),
        "htmjava": (68.17, 55.83, 72.59),
        "numentaTM": (67.60, 61.37, 71.87),
        "earthgecko Skyline": (63.15, 49.82, 69.25),
        "KNN CAD": (60.49, 46.44, 66.79),
        "relative entropy": (55.57, 49.22, 59.38),
        "Random Cut Forest": (53.41, 42.74, 62.08),
        "Twitter ADVec": (51.05, 35.99, 58.09),
        "windowed Gaussian": (44.80, 23.02, 53.58),
        "Etsy Skyline": (40.69, 31.05, 50.84),
        "Bayes change point": (21.41, 11.42, 34.09),
        "EXPoSE": (17.01, 2.81, 27.92),
        "random": (14.34, 4.91, 23.65),
    },
    "realAWSCloudwatch": {
        "Numenta HTM": (73.42, 65.79, 76.72),
        "contextOSE": (71.52, 67.65, 75.84),
        "ARTime": (69.48, 58.96, 75.21),
        "htmjava": (66.07, 57.78, 70.72),
        "KNN CAD": (60.69, 53.07, 64.91),
        "earthgecko Skyline": (58.12, 45.25, 64.30),
        "Random Cut Forest": (57.56, 44.90, 64.69),
        "relative entropy": (50.02, 43.96, 53.35),
        "Etsy Skyline": (49.29, 42.23, 56.20),
        "Twitter ADVec": (38.48, 25.49, 45.65),
        "random": (11.32, 1.77, 19.77),
    },
}
# How many files each scope holds: the anchors apply only to exactly those files.
SCOPE_FILES = {ALL_PUBLIC: PUBLIC_FILES, "realAWSCloudwatch": 17}
PROFILE_ORDER = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
