#!/usr/bin/env python3
"""Copy the console's pinned browser libraries from console/node_modules into static files.

`npm ci` in console/ installs them from the lock file; this copies only the files the pages
load (and their source maps and licences) into console/static/vendor/, which git ignores and
`collectstatic` picks up. Standard library only: the image's Node build stage runs it too.

Usage: python3 scripts/vendor_static.py [--check]
  --check   copy nothing; exit 1 naming each file that is missing or differs
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

CONSOLE = Path(__file__).resolve().parent.parent / "console"
MODULES = CONSOLE / "node_modules"
VENDOR = CONSOLE / "static" / "vendor"

# node_modules path -> name under static/vendor/. Source maps go along: ManifestStaticFilesStorage
# rewrites each `sourceMappingURL` to the map's hashed name and fails if the map is missing.
FILES: dict[str, str] = {
    "marked/lib/marked.umd.js": "marked/marked.umd.js",
    "marked/lib/marked.umd.js.map": "marked/marked.umd.js.map",
    "marked/LICENSE": "marked/LICENSE",
    "dompurify/dist/purify.min.js": "dompurify/purify.min.js",
    "dompurify/dist/purify.min.js.map": "dompurify/purify.min.js.map",
    "dompurify/LICENSE": "dompurify/LICENSE",
    "uplot/dist/uPlot.iife.min.js": "uplot/uPlot.iife.min.js",
    "uplot/dist/uPlot.min.css": "uplot/uPlot.min.css",
    "uplot/LICENSE": "uplot/LICENSE",
    "@xterm/xterm/lib/xterm.js": "xterm/xterm.js",
    "@xterm/xterm/lib/xterm.js.map": "xterm/xterm.js.map",
    "@xterm/xterm/css/xterm.css": "xterm/xterm.css",
    "@xterm/xterm/LICENSE": "xterm/LICENSE",
    "@xterm/addon-fit/lib/addon-fit.js": "xterm/addon-fit.js",
    "@xterm/addon-fit/lib/addon-fit.js.map": "xterm/addon-fit.js.map",
    "@xterm/addon-fit/LICENSE": "xterm/LICENSE-addon-fit",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report missing files")
    args = parser.parse_args(argv)
    missing = [src for src in FILES if not (MODULES / src).is_file()]
    if missing:
        print(
            f"vendor_static: not in {MODULES}: {', '.join(missing)}; run `npm ci` in console/",
            file=sys.stderr,
        )
        return 1
    stale = [
        dst
        for src, dst in FILES.items()
        if not (VENDOR / dst).is_file() or not filecmp.cmp(MODULES / src, VENDOR / dst, False)
    ]
    if args.check:
        if stale:
            print(f"vendor_static: out of date: {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    shutil.rmtree(VENDOR, ignore_errors=True)  # all generated: nothing stale stays behind
    for src, dst in FILES.items():
        target = VENDOR / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MODULES / src, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
