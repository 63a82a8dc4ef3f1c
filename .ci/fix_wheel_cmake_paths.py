#!/usr/bin/env python3
"""Point the ROS wheels' exported CMake files at this interpreter's headers.

Usage: <venv>/bin/python fix_wheel_cmake_paths.py

The ROS 2 wheels were built in a manylinux image, and their exported CMake
targets (share/*/cmake/*.cmake) hard-code that image's Python include
directories, e.g. /opt/python/cp311-cp311/include/python3.11 and
/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include.
CMake refuses to generate anything that links those targets while the paths
do not exist, so rosidl_generate_interfaces() fails. This rewrites them to the
running interpreter's include directory and numpy's. Run it with the venv's
python after every pip install; it is idempotent (a rewritten file no longer
matches) and touches only files that change.
"""

import pathlib
import re
import sys
import sysconfig

import numpy

PREFIX = pathlib.Path(sys.prefix)
# /opt/python/<tag>/lib/pythonX.Y/site-packages/numpy/{_core,core}/include (numpy 2 / numpy 1)
NUMPY_INCLUDE = re.compile(r"/opt/python/cp\d+-cp\d+[a-z]*/lib/python3\.\d+/site-packages/numpy/(?:_core|core)/include")
# /opt/python/<tag>/include/pythonX.Y[abi flags]
PYTHON_INCLUDE = re.compile(r"/opt/python/cp\d+-cp\d+[a-z]*/include/python3\.\d+[a-z]*")


def main():
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    if not (pathlib.Path(python_include) / "Python.h").is_file():
        sys.exit(f"error: {python_include}/Python.h is missing; install the Python headers "
                 "(Debian/Ubuntu: apt-get install python3-dev)")
    changed = 0
    for path in sorted(PREFIX.glob("share/*/cmake/*.cmake")):
        text = path.read_text()
        if "/opt/python/" not in text:
            continue
        new = NUMPY_INCLUDE.sub(numpy_include, text)
        new = PYTHON_INCLUDE.sub(python_include, new)
        if new != text:
            path.write_text(new)
            changed += 1
    left = [str(p) for p in PREFIX.glob("share/*/cmake/*.cmake")
            if re.search(r"/opt/python/cp\d+[^\"; ]*include", p.read_text())]
    if left:
        sys.exit("error: unrecognised /opt/python include paths remain in:\n  " + "\n  ".join(left))
    print(f"fix_wheel_cmake_paths: rewrote {changed} file(s) to {python_include} and {numpy_include}")


if __name__ == "__main__":
    main()
