"""Every chapter script's --help works from any folder and explains every option, with its default.

For each examples/NN_*.py (found by glob, so a new chapter is covered without editing this file):
- `python examples/NN_x.py --help`, run from an empty temporary folder, exits with 0;
- the options listed in that help text have an explanation of a few words each;
- the options of the script's real parser (captured in-process when the script calls parse_args) are
  exactly the options the help text lists, so a parsing slip here cannot hide an option;
- every option whose real default is neither None nor False shows "(default: ...)" in the help.
The last test feeds the same checks a parser with a missing help string and a formatter that hides
defaults, and expects both faults to be reported: the checks can fail.
"""
import argparse
import glob
import os
import re
import runpy
import subprocess
import sys
from typing import Dict, List

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "examples", "[0-9][0-9]_*.py")))
MIN_WORDS = 3          # an explanation shorter than this is a label, not an explanation
DEFAULT_MARK = "(default:"


def option_entries(help_text: str) -> Dict[str, str]:
    """{option string: its help text} for every option argparse listed, in any section of the help.

    argparse writes each option at an indent of two spaces: its invocation ("-s STEPS, --steps STEPS"),
    then two or more spaces and the help text, which wraps onto lines indented further; when the
    invocation is long, the help text starts on the next line instead.
    """
    entries: Dict[str, str] = {}
    current: List[str] = []
    parts: List[str] = []

    def close() -> None:
        for flag in current:
            entries[flag] = " ".join(parts).strip()

    in_sections = False
    for line in help_text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):                       # "usage: ...", a description, or a section heading
            close()
            current, parts = [], []
            in_sections = in_sections or (line.rstrip().endswith(":") and not line.startswith("usage:"))
            continue
        if not in_sections:
            continue
        if re.match(r"  -", line):                         # a new option
            close()
            invocation, *rest = re.split(r" {2,}", line.strip(), maxsplit=1)
            current = [piece.split(" ")[0] for piece in invocation.split(", ")]
            parts = rest
        elif current and re.match(r" {3,}\S", line):       # the option's help, continued
            parts.append(line.strip())
        else:                                              # a positional argument: not checked here
            close()
            current, parts = [], []
    close()
    return entries


def explanation(help_entry: str) -> str:
    """The help text without the "(default: ...)" that ArgumentDefaultsHelpFormatter appends."""
    cut = help_entry.rfind(DEFAULT_MARK)
    return (help_entry if cut < 0 else help_entry[:cut]).strip()


def shows_no_default(default) -> bool:
    """None, False (a flag that is off) and SUPPRESS need not be shown; 0 and 0.0 must be (0 == False)."""
    return default is None or default is False or default is argparse.SUPPRESS


def help_problems(help_text: str, parser: argparse.ArgumentParser) -> List[str]:
    """What is missing from `help_text` given the real parser's options; empty when all is well."""
    entries = option_entries(help_text)
    problems = []
    listed = {flag for action in parser._actions if action.help != argparse.SUPPRESS
              for flag in action.option_strings}
    if set(entries) != listed:
        problems.append(f"help lists {sorted(entries)}, the parser has {sorted(listed)}")
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        flag = action.option_strings[-1]
        text = entries.get(flag, "")
        if len(explanation(text).split()) < MIN_WORDS:
            problems.append(f"{flag}: no explanation (help text {text!r})")
        if not shows_no_default(action.default) and DEFAULT_MARK not in text:
            problems.append(f"{flag}: default {action.default!r} not shown")
    return problems


class _ParserCaptured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__("parser captured")
        self.parser = parser


def captured_parser(script: str, monkeypatch) -> argparse.ArgumentParser:
    """Runs the script as __main__ in this process, stopping it when it first asks argparse to parse."""
    def capture(self, args=None, namespace=None):
        raise _ParserCaptured(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(_ParserCaptured) as caught:
        runpy.run_path(script, run_name="__main__")
    return caught.value.parser


@pytest.mark.parametrize("script", SCRIPTS, ids=[os.path.basename(s) for s in SCRIPTS])
def test_help_explains_every_option(script, tmp_path, monkeypatch):
    done = subprocess.run([sys.executable, script, "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    assert option_entries(done.stdout), f"no options found in:\n{done.stdout}"
    problems = help_problems(done.stdout, captured_parser(script, monkeypatch))
    assert not problems, "\n".join(problems) + f"\n\n{done.stdout}"


def test_checks_catch_a_missing_help_and_a_hidden_default():
    def build(formatter):
        parser = argparse.ArgumentParser(prog="demo", formatter_class=formatter)
        parser.add_argument("--steps", type=int, default=10, help="how many training steps to take")
        parser.add_argument("--seed", type=int, default=0, help="random seed of the initial weights")
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--tokenizer", default=None, help="a tokenizer file to load instead of training one")
        parser.add_argument("--quiet", action="store_true", help="print nothing while training runs")
        return parser

    good = build(argparse.ArgumentDefaultsHelpFormatter)
    assert set(option_entries(good.format_help())) == {"-h", "--help", "--steps", "--seed", "--batch-size",
                                                       "--tokenizer", "--quiet"}
    assert help_problems(good.format_help(), good) == ["--batch-size: no explanation (help text '')",
                                                       "--batch-size: default 32 not shown"]
    plain = build(argparse.HelpFormatter)
    assert help_problems(plain.format_help(), plain) == ["--steps: default 10 not shown",
                                                         "--seed: default 0 not shown",
                                                         "--batch-size: no explanation (help text '')",
                                                         "--batch-size: default 32 not shown"]
