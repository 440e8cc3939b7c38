"""Keep DDS traffic on this host by default (Fast DDS loopback-only profile).

Fast DDS's built-in transports multicast discovery out of every interface, even between two
processes on one machine. Every process of this project therefore points
``FASTDDS_DEFAULT_PROFILES_FILE`` at ``config/fastdds_localhost.xml`` (shared memory + UDP on
127.0.0.1) before its DDS participant exists, unless the user chose otherwise:

* ``FASTDDS_DEFAULT_PROFILES_FILE`` already set: the user's profile is used as it is;
* ``SIAM_TRACKER_DDS_PROFILE=/path/to/profile.xml``: that profile;
* ``SIAM_TRACKER_DDS_PROFILE=system``: Fast DDS's own defaults (e.g. a robot whose camera is
  on another machine).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

PROFILE_NAME = "fastdds_localhost.xml"
PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
CHOICE_ENV = "SIAM_TRACKER_DDS_PROFILE"


def default_profile_path() -> Path | None:
    """The shipped profile: in the source tree, else in the installed package's share/."""
    source = Path(__file__).resolve().parent.parent / "config" / PROFILE_NAME
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("siam_tracker_ros")) / "config" / PROFILE_NAME
    except (ImportError, LookupError):
        return None
    return installed if installed.is_file() else None


def apply_default_profile(env: MutableMapping[str, str] = os.environ) -> str | None:
    """Set the DDS profile in ``env`` as described above; returns the profile in force."""
    if PROFILE_ENV in env:
        return env[PROFILE_ENV]
    choice = env.get(CHOICE_ENV, "")
    if choice == "system":
        return None
    if choice:
        if not Path(choice).is_file():
            raise FileNotFoundError(f"{CHOICE_ENV}={choice}: no such DDS profile file")
        env[PROFILE_ENV] = choice
        return choice
    profile = default_profile_path()
    if profile is not None:
        env[PROFILE_ENV] = str(profile)
    return env.get(PROFILE_ENV)
