#!/usr/bin/env python3
"""No function outside src/kernels/ is longer than 100 lines (docs/design.md, "How the code reads").

A brace counter, not a parser: comments, strings and preprocessor lines are blanked, then every
brace opened at namespace or class scope whose header ends like a function signature (a closing
parenthesis, optionally followed by qualifiers, a trailing return type or a constructor's member
initialisers) starts a function; its length is its closing line minus its opening line plus one.
Usage: function_length.py ROOT [FILE...]; without files it checks every C++/CUDA source under
ROOT except src/kernels/, third-party and build trees. Exit 1 naming file:line, name and length.
"""
import os
import re
import sys

LIMIT = 100
# Functions allowed past the limit, with the reason. Keep this empty unless a split would hurt.
EXCEPTIONS = {
}
SKIP_DIRS = {"build", ".git", ".venv-ref", "src/kernels", "third_party", "runs"}
EXTENSIONS = (".h", ".cpp", ".cu", ".cuh")
SCOPE_WORDS = re.compile(r"\b(namespace|class|struct|union|enum|extern)\b")
CONTROL_WORDS = re.compile(r"^\s*(if|for|while|switch|catch|do|else|return)\b")
FUNCTION_TAIL = re.compile(
    r"\)\s*(const|noexcept|override|final|mutable|volatile|&|&&|\s)*(->\s*[^{;]*)?$|"  # f(...) [quals] [-> T]
    r"\)\s*:\s*[^;]*[)}]\s*$")  # constructor: f(...) : a_(x), b_{y}


def blank(text):
    """Comments, string/char literals and preprocessor lines become spaces; newlines stay."""
    out, i, n = [], 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and c == "#":
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append(" \n"); i += 2; continue
                out.append(" "); i += 1
            continue
        if c == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                out.append(" "); i += 1
            continue
        if c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end])); i = end
            continue
        if c == "R" and text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            if m:
                end = text.find(")" + m.group(1) + '"', i)
                end = n if end < 0 else end + len(m.group(1)) + 2
                out.append(re.sub(r"[^\n]", " ", text[i:end])); i = end
                continue
        if c in "\"'" and not (c == "'" and i > 0 and text[i - 1].isalnum()):  # 1'000 digit separators
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + c); i = min(j + 1, n)
            continue
        out.append(c)
        at_line_start = c == "\n" or (at_line_start and c in " \t")
        i += 1
    return "".join(out)


def long_functions(path, text):
    """Yields (line, name, length) for every function longer than LIMIT."""
    code = blank(text)
    stack = []  # (kind, start line, name): kind is scope, function or other
    header, line = "", 1
    for c in code:
        if c == "\n":
            line += 1
        if c == "{":
            in_function = any(kind == "function" for kind, _, _ in stack)
            h = " ".join(header.split())
            if in_function:
                stack.append(("other", line, ""))
            elif SCOPE_WORDS.search(h.split("(")[0]) and not h.endswith(")"):
                stack.append(("scope", line, "")); header = ""
            elif FUNCTION_TAIL.search(h) and not CONTROL_WORDS.match(h):
                name = re.findall(r"([~\w:]+(?:<[^()]*>)?)\s*\(", h)
                stack.append(("function", line, name[0] if name else h[:40])); header = ""
            else:
                stack.append(("other", line, "")); header += c
            continue
        if c == "}":
            kind, start, name = stack.pop() if stack else ("other", line, "")
            if kind == "function" and line - start + 1 > LIMIT:
                yield start, name, line - start + 1
            if kind in ("function", "scope"):
                header = ""
            elif not any(k == "function" for k, _, _ in stack):
                header += c
            continue
        if not any(kind == "function" for kind, _, _ in stack):
            header = "" if c == ";" else header + c


def sources(root):
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel, d)) not in SKIP_DIRS
                   and not d.startswith(".")]
        for f in sorted(files):
            if f.endswith(EXTENSIONS):
                yield os.path.join(folder, f)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../..")
    files = sys.argv[2:] or list(sources(root))
    bad = 0
    for path in files:
        rel = os.path.relpath(path, root)
        with open(path, encoding="utf-8", errors="replace") as f:
            for start, name, length in long_functions(rel, f.read()):
                if (rel, name) in EXCEPTIONS:
                    continue
                print(f"{rel}:{start}: {name} is {length} lines (limit {LIMIT})")
                bad += 1
    if bad:
        print(f"function_length: {bad} function(s) over {LIMIT} lines; split them into named steps")
        return 1
    print(f"function_length: {len(files)} files, no function over {LIMIT} lines outside src/kernels/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
