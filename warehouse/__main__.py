"""`python -m warehouse auditpack ...`: the former name of `python -m portal auditpack`, kept
for one release so that scheduled jobs keep working; it says so on standard error."""

from __future__ import annotations

import sys

from portal.__main__ import main as portal_main

if __name__ == "__main__":
    if sys.argv[1:2] == ["auditpack"]:
        print("note: `python -m warehouse auditpack` is now `python -m portal auditpack`",
              file=sys.stderr)  # fmt: skip
        sys.exit(portal_main(sys.argv[1:]))
    print("usage: python -m portal auditpack ... (see python -m portal --help)", file=sys.stderr)
    sys.exit(2)
