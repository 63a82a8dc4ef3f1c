#!/usr/bin/env python3
"""Print the requirements of setup.py's extras, one per line.

Usage: extras.py [EXTRA ...]   (default: every extra)

The development venv gets the package itself from colcon, not from pip, so
`pip install .[test]` is not an option there; this reads the EXTRAS_REQUIRE
literal out of setup.py without running it, so the extras stay declared in
one place.
"""

import ast
import pathlib
import sys

SETUP_PY = pathlib.Path(__file__).resolve().parent.parent / "setup.py"


def extras_require():
    for node in ast.parse(SETUP_PY.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "EXTRAS_REQUIRE" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    sys.exit(f"{SETUP_PY}: no EXTRAS_REQUIRE = {{...}} literal found")


def main(names):
    extras = extras_require()
    for name in names or sorted(extras):
        if name not in extras:
            sys.exit(f"{SETUP_PY}: no extra named {name!r} (have: {', '.join(sorted(extras))})")
        print("\n".join(extras[name]))


if __name__ == "__main__":
    main(sys.argv[1:])
