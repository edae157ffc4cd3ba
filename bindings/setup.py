"""Builds iotstream._native (and libiotstream and the plugins it needs) with CMake on the
repository root, then places them inside the package:

    iotstream/_native.*.so        the extension (RPATH $ORIGIN)
    iotstream/libiotstream.so.N   the core it links (N: IOTS_ABI_MAJOR)
    iotstream/plugins/*.so        the stage plugins, found by iotstream.default_plugin_dir()

Environment: IOTSTREAM_CMAKE_ARGS (extra configure arguments), IOTSTREAM_BUILD_JOBS (default 2).
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def header_number(name: str) -> int:
    """`#define <name> <number>` from iotstream.h, where the version and ABI numbers are written once."""
    header = (ROOT / "core" / "include" / "iotstream" / "iotstream.h").read_text()
    return int(re.search(rf"^#define {name} +(0x[0-9a-fA-F]+|[0-9]+)\b", header, re.M).group(1), 0)


def version() -> str:
    """IOTS_VERSION (hex MM.mm.rr.xx) as major.minor.patch."""
    number = header_number("IOTS_VERSION")
    return f"{number >> 24 & 0xff}.{number >> 16 & 0xff}.{number >> 8 & 0xff}"


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if not (ROOT / "core" / "include" / "iotstream" / "iotstream.h").is_file():
            raise RuntimeError(f"{ROOT} is not the iotstream repository: build from a checkout (pip install ./bindings)")
        build_dir = Path(self.build_temp).resolve() / "cmake"
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DIOTSTREAM_BUILD_TESTS=OFF", "-DIOTSTREAM_BUILD_BENCHMARKS=OFF", "-DIOTSTREAM_BUILD_PYTHON=ON",
            "-DIOTSTREAM_PYTHON_WHEEL=ON", f"-DPython3_EXECUTABLE={sys.executable}",
        ] + os.environ.get("IOTSTREAM_CMAKE_ARGS", "").split()
        subprocess.run(configure, check=True)
        jobs = os.environ.get("IOTSTREAM_BUILD_JOBS", "2")
        subprocess.run(["cmake", "--build", str(build_dir), "-j", jobs], check=True)

        module = next((build_dir / "python" / "iotstream").glob("_native*.so"))
        target = Path(self.get_ext_fullpath(ext.name)).resolve()
        package = target.parent
        package.mkdir(parents=True, exist_ok=True)
        shutil.copy2(module, target)
        soname = f"libiotstream.so.{header_number('IOTS_ABI_MAJOR')}"
        shutil.copy2((build_dir / "core" / soname).resolve(), package / soname)
        plugins = package / "plugins"
        if plugins.exists():
            shutil.rmtree(plugins)
        plugins.mkdir()
        for plugin in sorted((build_dir / "plugins").glob("*.so")):
            shutil.copy2(plugin, plugins / plugin.name)


setup(version=version(), ext_modules=[CMakeExtension("iotstream._native")], cmdclass={"build_ext": CMakeBuild})
