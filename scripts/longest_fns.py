#!/usr/bin/env python3
"""Lists the longest Rust functions of a source tree (issue 11's size figures).

    scripts/longest_fns.py [ROOT] [--top N] [--files N] [--exclude CRATE]... [--markdown]

Looks at `*/src/**/*.rs` below ROOT (default: the current directory; `target/` and hidden
folders are skipped). A function runs from its `fn` keyword to its closing brace; braces
inside comments, strings (raw and byte strings too) and character literals do not count, and
lifetimes are told apart from character literals. A function nested in another is listed on
its own and also counts in the outer one's lines. Declarations without a body (trait methods)
are not functions here. `--exclude tests` leaves out a crate's folder (here: the benchmark
drivers and test helpers of `tests/`).

Test code is left out: a `#[cfg(test)]` module written inline, a `#[cfg(test)] mod NAME;`
file (and the folder of its submodules), and a `#[cfg(test)]` function. Other gated code
(`#[cfg(all(test, ...))]`, `#[path]` attributes) is not recognised.

`--files N` also lists the N largest `.rs` files anywhere below ROOT (outside `target/`),
like `find . -name '*.rs' -not -path './target/*' | xargs wc -l | sort -n | tail`.
"""
import argparse
import os
import re
import sys


def blank(text):
    """`text` with comments, strings and character literals replaced by spaces (line breaks
    kept, so offsets and line numbers stay valid)."""
    out = list(text)
    n = len(text)
    i = 0

    def wipe(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            wipe(i, j)
            i = j
        elif c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            wipe(i, j)
            i = j
        elif c in "rbc" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            # Raw strings (r"", r#""#, br"", cr""), byte and C strings (b"", c"").
            m = re.compile(r'(?:b|c)?r(#*)"').match(text, i)
            if m:
                end = text.find('"' + m.group(1), m.end())
                end = n if end < 0 else end + 1 + len(m.group(1))
                wipe(i, end)
                i = end
            elif c in "bc" and nxt == '"':
                i += 1  # the string itself is handled at the quote
            elif c == "b" and nxt == "'":
                i += 1  # byte literal: handled at the quote
            else:
                i += 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            wipe(i, j + 1)
            i = j + 1
        elif c == "'":
            # A character literal ('x', '\n', '\u{..}', '{') or a lifetime ('a).
            if nxt == "\\":
                j = i + 2
                while j < n and text[j] != "'":
                    j += 1
                wipe(i, j + 1)
                i = j + 1
            elif i + 2 < n and text[i + 2] == "'":
                wipe(i, i + 3)
                i += 3
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def matching(clean, open_at):
    """Offset of the brace closing the one at `open_at`, or None."""
    depth = 0
    for k in range(open_at, len(clean)):
        if clean[k] == "{":
            depth += 1
        elif clean[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return None


def body_start(clean, at):
    """Offset of the `{` opening the body of the item whose keyword is at `at`, or None when a
    `;` ends the item first (a declaration) or a `}` ends the block around it."""
    depth = 0
    for k in range(at, len(clean)):
        ch = clean[k]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch in ";}":
            return None
        elif depth == 0 and ch == "{":
            return k
    return None


CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
ATTR = re.compile(r"\s*#\s*!?\s*\[[^\]]*\]")
MOD = re.compile(r"\s*(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*([;{])")
FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")


def child_dir(path):
    """The folder holding the files of `path`'s submodules."""
    base = os.path.basename(path)
    if base in ("lib.rs", "main.rs", "mod.rs"):
        return os.path.dirname(path)
    return path[: -len(".rs")]


def scan(path, clean):
    """(functions, test files): the functions of one file outside test code, as
    (line, name, lines), and the files that its `#[cfg(test)] mod NAME;` lines name."""
    skipped = []  # (start, end) offsets of test code
    test_files = []
    for m in CFG_TEST.finditer(clean):
        k = m.end()
        while True:  # further attributes between `#[cfg(test)]` and the item
            a = ATTR.match(clean, k)
            if not a:
                break
            k = a.end()
        mod = MOD.match(clean, k)
        if mod and mod.group(2) == ";":
            d = os.path.join(child_dir(path), mod.group(1))
            test_files += [d + ".rs", os.path.join(d, "mod.rs"), d + os.sep]
            continue
        brace = body_start(clean, k)
        if brace is not None:
            end = matching(clean, brace)
            skipped.append((m.start(), len(clean) if end is None else end))
    fns = []
    for m in FN.finditer(clean):
        if any(a <= m.start() <= b for a, b in skipped):
            continue
        brace = body_start(clean, m.end())
        if brace is None:
            continue
        end = matching(clean, brace)
        if end is None:
            continue
        first = clean.count("\n", 0, m.start()) + 1
        last = clean.count("\n", 0, end) + 1
        fns.append((first, m.group(1), last - first + 1))
    return fns, test_files


def rust_files(root, src_only, exclude=()):
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        parts = [] if rel == "." else rel.split(os.sep)
        skip = ("target",) + tuple(exclude)
        dirs[:] = sorted(x for x in dirs if not x.startswith(".") and not (not parts and x in skip))
        if src_only and (len(parts) < 2 or parts[1] != "src"):
            continue
        for f in sorted(files):
            if f.endswith(".rs"):
                yield os.path.join(d, f)


def longest(root, exclude):
    found, test_files = [], []
    for path in rust_files(root, True, exclude):
        with open(path, encoding="utf-8", errors="replace") as fh:
            clean = blank(fh.read())
        fns, tests = scan(path, clean)
        test_files += tests
        found += [(os.path.relpath(path, root), line, name, lines) for line, name, lines in fns]

    def is_test(rel):
        p = os.path.join(root, rel)
        return any(p == t or (t.endswith(os.sep) and p.startswith(t)) for t in test_files)

    found = [f for f in found if not is_test(f[0])]
    found.sort(key=lambda f: (-f[3], f[0], f[1]))
    return found


def largest_files(root):
    sizes = []
    for path in rust_files(root, False):
        with open(path, encoding="utf-8", errors="replace") as fh:
            sizes.append((sum(1 for _ in fh), os.path.relpath(path, root)))
    sizes.sort(key=lambda s: (-s[0], s[1]))
    return sizes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", nargs="?", default=".")
    ap.add_argument("--top", type=int, default=10, help="how many functions (default 10)")
    ap.add_argument("--files", type=int, default=0, help="also the N largest .rs files")
    ap.add_argument("--exclude", action="append", default=[], metavar="CRATE",
                    help="leave out this top-level folder (repeatable)")
    ap.add_argument("--markdown", action="store_true", help="Markdown tables")
    args = ap.parse_args()
    fns = longest(args.root, args.exclude)[: args.top]
    if args.markdown:
        print("| lines | function | file:line |\n|---:|---|---|")
        for path, line, name, lines in fns:
            print(f"| {lines} | `{name}` | `{path}:{line}` |")
    else:
        for path, line, name, lines in fns:
            print(f"{lines:6}  {name:32}  {path}:{line}")
    if args.files:
        files = largest_files(args.root)[: args.files]
        print()
        if args.markdown:
            print("| lines | file |\n|---:|---|")
            for lines, path in files:
                print(f"| {lines} | `{path}` |")
        else:
            for lines, path in files:
                print(f"{lines:6}  {path}")


if __name__ == "__main__":
    sys.exit(main())
