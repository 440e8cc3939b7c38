"""pip-installable Python side of siam-tracker: siam_core and siam_tracker_ros with console scripts.

In a colcon workspace the root CMakeLists.txt installs the same packages; this file serves the
bare-machine setup (``make setup``) and plain ``pip install``.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def requirements(name: str) -> list[str]:
    lines = (ROOT / "requirements" / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


setup(
    name="siam-tracker",
    version="0.1.0",
    description="Siamese single-object tracking (SiamRPN family) with a ROS 2 node",
    python_requires=">=3.10",
    packages=find_packages(
        include=["siam_core", "siam_core.*", "siam_tracker_ros", "siam_tracker_ros.*"]
    ),
    package_data={
        "siam_core": [
            "configs/*.yaml",
            "configs/**/*.yaml",
            "weights/*",
            "weights/*-int8/*",  # int8 graphs shipped beside a weights file
            "weights/*-int8-7bit/*",  # the same with 7-bit weights (CPUs without VNNI)
            "data/*.yaml",
            "data/*.json",
        ]
    },
    install_requires=requirements("core.txt"),
    extras_require={"ros": requirements("ros.txt"), "dev": requirements("dev.txt")},
    entry_points={
        "console_scripts": [
            "siam-track = siam_core.cli.track:main",
            "siam-convert = siam_core.cli.convert:main",
            "siam-export = siam_core.cli.export:main",
            "siam-tracker-node = siam_tracker_ros.node:main",
            "siam-tracker-lifecycle-node = siam_tracker_ros.node:lifecycle_main",
            "siam-video-player = siam_tracker_ros.player:main",
            "siam-demo = siam_tracker_ros.demo:main",
            "siam-servo = siam_tracker_ros.servo:main",
            "siam-pantilt-sim = siam_tracker_ros.pantilt_sim:main",
            "siam-eval = siam_core.cli.eval:main",
            "siam-train = siam_core.cli.train:main",
            "siam-curate = siam_core.cli.curate:main",
            "siam-bag = siam_tracker_ros.bag.cli:main",
        ]
    },
)
