#!/usr/bin/env python3
"""Checks that bench/pgbench/*.sql still carry revwallet's exact SQL; `--write` regenerates them from src/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from revbench import sqlsource  # noqa: E402


def main() -> int:
    if "--write" in sys.argv[1:]:
        for path in sqlsource.write():
            print(f"wrote {path.relative_to(sqlsource.ROOT)}")
        return 0
    problems = sqlsource.check()
    for problem in problems:
        print(f"bench-check: {problem}", file=sys.stderr)
    if not problems:
        print("bench-check: bench/pgbench scripts carry the SQL of src/store exactly")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
