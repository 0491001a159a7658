"""python -m tinynet.grade <assignment> [file]: grade one assignment (or all) and print the report."""

import argparse
import sys

from . import ALIASES, ASSIGNMENTS, grade, solution_path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinynet.grade", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("assignment", help=f"one of {', '.join(ASSIGNMENTS)}, a short name "
                        f"({', '.join(ALIASES)}), or all")
    parser.add_argument("file", nargs="?", help="the file to grade (default: tutorials/assignments/<assignment>.py)")
    parser.add_argument("--solution", action="store_true", help="grade the reference solution instead")
    args = parser.parse_args(argv)
    if args.assignment == "all" and args.file:
        parser.error("a file goes with one assignment, not with all")
    names = ASSIGNMENTS if args.assignment == "all" else [args.assignment]
    passed = True
    for name in names:
        try:
            report = grade(name, solution_path(name) if args.solution else args.file)
        except (ValueError, FileNotFoundError) as error:
            parser.error(str(error))
        print(report.text(), end="\n\n")
        passed = passed and report.passed
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
