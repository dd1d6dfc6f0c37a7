"""`make bench`: run every benchmark module in this folder and print its figures.

Each module has a ``main() -> None`` that prints its own figures; extra
command-line words select modules by name (``make bench BENCH=cluster``).
"""

import importlib
import pkgutil
import sys

import bench


def main(argv: list[str]) -> None:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
    for name in argv or names:
        print(f"== bench.{name}", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
