#!/usr/bin/env python3
"""A man page's scdoc source against its program's --help (suite doc).

  check_options.py PROGRAM PAGE.scd

Two checks, each a test case:
  1. every option PROGRAM --help names (its --long and -x forms) is
     documented on the page;
  2. every option the page documents is named by PROGRAM --help.
An option is documented when it is an option term: a bold *--name* or *-x*
on a line at the left margin whose next non-blank line is indented with a tab
(scdoc's term-and-description form), as in

    *-c*, *--concurrency* _N_
    <TAB>Requests in flight (64).

A mention in running text does not count. --help itself need not be named by
--help; -h needs not either when PROGRAM -h prints what --help prints.
Each option missing on either side is named on stderr. Prints the
"N passed, M failed" line tools/test-summary reads; exits 1 if a case failed.
"""
import re
import subprocess
import sys

# An option in --help: -x or --name, not part of a word ("no-load",
# "/fail-until/N") nor an arrow ("->") or a lone dash ('-' = stdin).
HELP_OPTION = re.compile(r"(?<![\w/-])(--[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|-[A-Za-z0-9])(?![\w-])")
# An option term's bold options: *--name* or *-x*.
TERM_OPTION = re.compile(r"\*(--?[A-Za-z0-9][A-Za-z0-9.-]*)\*")


def run(program, flag):
    p = subprocess.run([program, flag], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30, check=False)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def help_options(text):
    return set(HELP_OPTION.findall(text))


def page_options(path):
    """-> {option: line number} of the option terms in an scdoc source."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    found = {}
    for i, line in enumerate(lines):
        if not line.startswith("*-"):
            continue
        following = next((l for l in lines[i + 1:] if l.strip()), "")
        if not following.startswith("\t"):
            continue
        for option in TERM_OPTION.findall(line):
            found.setdefault(option, i + 1)
    return found


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    program, page = argv[1], argv[2]
    name = program.rsplit("/", 1)[-1]
    page_name = page.rsplit("/", 1)[-1]
    rc, help_text = run(program, "--help")
    if rc != 0 or not help_text.strip():
        print("%s --help exited %d with %d bytes on stdout" % (name, rc, len(help_text)),
              file=sys.stderr)
        print("doc %s: 0 passed, 2 failed" % name)
        return 1
    in_help = help_options(help_text)
    on_page = page_options(page)
    if not on_page:
        print("%s: no option terms found (is it scdoc?)" % page_name, file=sys.stderr)

    passed = failed = 0
    undocumented = sorted(in_help - set(on_page))
    for option in undocumented:
        print("%s --help names %s, which %s does not document" % (name, option, page_name),
              file=sys.stderr)
    if undocumented:
        failed += 1
    else:
        passed += 1

    unnamed = []
    for option in sorted(set(on_page) - in_help):
        if option == "--help":
            continue  # it printed the text just read
        if option == "-h" and run(program, "-h") == (0, help_text):
            continue
        unnamed.append(option)
    for option in unnamed:
        print("%s documents %s (line %d), which %s --help does not name"
              % (page_name, option, on_page[option], name), file=sys.stderr)
    if unnamed:
        failed += 1
    else:
        passed += 1

    print("%s --help: %d options; %s: %d options" % (name, len(in_help), page_name, len(on_page)))
    print("doc %s: %d passed, %d failed" % (name, passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
