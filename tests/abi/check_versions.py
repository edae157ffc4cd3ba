"""The version and ABI numbers are written once, in the public headers. Checks that everything
else derives them: CMake's project version and SOVERSION, the built library (iots_version(),
iots_version_str(), its SONAME), the Python package version (bindings/setup.py), and that no
build file writes a number of its own.

usage: check_versions.py <source dir> <library> <cmake version> <abi major> <abi minor>
                         <plugin abi major> <plugin abi minor>
"""
import ctypes
import re
import subprocess
import sys
from pathlib import Path


def header_number(header: Path, name: str) -> int:
    match = re.search(rf"^#define {name} +(0x[0-9a-fA-F]+|[0-9]+)\b", header.read_text(), re.M)
    assert match, f"{header}: no '#define {name} <number>'"
    return int(match.group(1), 0)


def main(source: str, library: str, cmake_version: str, *cmake_abi: str) -> None:
    root = Path(source)
    include = root / "core" / "include" / "iotstream"
    number = header_number(include / "iotstream.h", "IOTS_VERSION")
    version = f"{number >> 24 & 0xff}.{number >> 16 & 0xff}.{number >> 8 & 0xff}"
    abi = [header_number(include / "iotstream.h", "IOTS_ABI_MAJOR"), header_number(include / "iotstream.h", "IOTS_ABI_MINOR"),
           header_number(include / "plugin.h", "IOTS_PLUGIN_ABI_MAJOR"),
           header_number(include / "plugin.h", "IOTS_PLUGIN_ABI_MINOR")]
    failures = []

    def expect(what: str, got, want) -> None:
        if got != want:
            failures.append(f"{what} is {got!r}, the headers say {want!r}")

    expect("CMake's project version", cmake_version, version)
    expect("CMake's ABI numbers (core major, minor, plugin major, minor)", [int(n) for n in cmake_abi], abi)

    lib = ctypes.CDLL(library)
    lib.iots_version_str.restype = ctypes.c_char_p
    expect("iots_version()", lib.iots_version(), number)
    expect("iots_version_str()", lib.iots_version_str().decode(), version)
    soname = re.search(r"SONAME\s+(\S+)", subprocess.run(["objdump", "-p", library], check=True, capture_output=True,
                                                        text=True).stdout)
    expect("the library's SONAME", soname and soname.group(1), f"libiotstream.so.{abi[0]}")

    python = subprocess.run([sys.executable, "setup.py", "--version"], cwd=root / "bindings", check=True,
                            capture_output=True, text=True).stdout.split()
    expect("the Python package version (bindings/setup.py)", python[-1] if python else None, version)

    # A second copy of a number is how they drift apart: build files must not write their own.
    copies = {
        "CMakeLists.txt": r"project\([^)]*VERSION\s+\d|SOVERSION\s+\d",
        "core/CMakeLists.txt": r"SOVERSION\s+\d|VERSION\s+\d+\.\d",
        "bindings/pyproject.toml": r"^version\s*=",
        "bindings/setup.py": r"libiotstream\.so\.\d|version\s*=\s*['\"]\d",
    }
    for file, pattern in copies.items():
        text = (root / file).read_text()
        if re.search(pattern, text, re.M):
            failures.append(f"{file} writes a version or ABI number itself (matches {pattern})")

    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print(f"ok: version {version}, core ABI {abi[0]}.{abi[1]}, plugin ABI {abi[2]}.{abi[3]}, "
          f"SONAME {soname.group(1)}: one source, the headers")


if __name__ == "__main__":
    main(*sys.argv[1:])
