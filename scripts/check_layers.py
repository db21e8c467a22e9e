#!/usr/bin/env python3
"""The lint level's import check. Reads the files of a crate's src/ and the imports between
them (`use crate::...`, `use super::...`, `crate::a::b` in code, a folder's mod.rs naming its
files) and fails, naming them, on:

- a circle between modules, where a folder (its mod.rs and its files) or a top-level file is
  one module;
- a circle between the files of one folder other than its mod.rs (which declares, re-exports
  and dispatches to them, while they use the types it defines);
- in the extension, an import from a layer above the file's own:

    lib.rs > api/ > verification/, challenges/ > factor_kinds/ > the domain modules > pg/

  (factor_kinds/row.rs, the verification row, and factor_kinds/record.rs, the outcome
  statements, sit below every kind; the pipeline and challenge creation drive the kinds.)

A `use` of `challenges` from a factor kind, say, is both a circle (challenges, factor_kinds)
and an upward import.

Usage: scripts/check_layers.py [crate root ...]  (default: the repository's two crates)
Prints files, modules and import arrows per crate; exits 1 on any problem.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Layer of a file of the extension (higher imports lower, never the reverse). The core crate
# has no layers of its own: only its circles are checked.
LAYERS = [
    (re.compile(r"^lib\.rs$"), 5),
    (re.compile(r"^api/"), 4),
    (re.compile(r"^(verification|challenges)/"), 3),
    (re.compile(r"^factor_kinds/"), 2),
    (re.compile(r"^pg/"), 0),
]
DOMAIN = 1  # every other file: the domain modules, between the kinds and the plumbing


def layer(rel):
    for pattern, n in LAYERS:
        if pattern.search(rel):
            return n
    return DOMAIN


def module_files(src):
    """module path (tuple) -> file, for every .rs file under src."""
    files = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src)
        parts = list(rel.with_suffix("").parts)
        if parts == ["lib"]:
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        files[tuple(parts)] = f
    return files


def strip(text):
    """The code without comments and string literals (their text names no module)."""
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def expand_use(prefix, body):
    """Paths of a `use` tree: `a::{b, c::{d}}` -> a::b, a::c::d."""
    body = body.strip()
    if body.startswith("{") and body.endswith("}"):
        inner, depth, part, out = body[1:-1], 0, "", []
        for ch in inner + ",":
            if ch == "," and depth == 0:
                if part.strip():
                    out += expand_use(prefix, part)
                part = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            part += ch
        return out
    head, sep, rest = body.partition("::")
    if sep and rest.strip().startswith("{"):
        return expand_use(prefix + [head.strip()], rest)
    if sep:
        return expand_use(prefix + [head.strip()], rest)
    name = body.split(" as ")[0].strip()
    return [prefix + [name]] if name not in ("self", "*") else [prefix]


def imports(f, me, text):
    """Module paths (lists) that file `f`, module `me`, refers to."""
    code = strip(text)
    paths = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)\b[^;]*);", code):
        paths += expand_use([], m.group(1))
    for m in re.finditer(r"(?<![\w:])((?:crate|super)(?:::\w+)+)", code):
        paths.append(m.group(1).split("::"))
    is_mod = f.name in ("mod.rs", "lib.rs")
    if is_mod:
        # A declared child named in code (`totp::Totp` in factor_kinds/mod.rs) is a use of it.
        children = set(re.findall(r"\bmod\s+(\w+)\s*;", code))
        for m in re.finditer(r"(?<![\w:])(\w+)((?:::(?:\w+|\*|\{))+)", code):
            if m.group(1) in children:
                paths.append(["self", m.group(1)] + [x for x in m.group(2).split("::")[1:] if x.isidentifier()])
    out = []
    for p in paths:
        p = [x.strip() for x in p if x.strip()]
        base = list(me)
        if p[0] == "crate":
            base, p = [], p[1:]
        elif p[0] == "self":
            base, p = list(me), p[1:]
        while p and p[0] == "super":
            base, p = base[:-1], p[1:]
        out.append(base + p)
    return out


def resolve(path, files):
    """The deepest module file a path names (None: an external crate or an item of lib.rs)."""
    for n in range(len(path), 0, -1):
        if tuple(path[:n]) in files:
            return files[tuple(path[:n])]
    return None


def check(src, layered):
    files = module_files(src)
    edges = {f: set() for f in files.values()}
    for me, f in files.items():
        for p in imports(f, me, f.read_text()):
            target = resolve(p, files)
            if target is not None and target != f:
                edges[f].add(target)
    rel = {f: str(f.relative_to(src)) for f in edges}
    problems = []
    # Between modules: a folder (its mod.rs and its files) or a top-level file is one node.
    unit = {f: rel[f].split("/")[0].removesuffix(".rs") for f in edges}
    units = {u: set() for u in unit.values()}
    for f, targets in edges.items():
        units[unit[f]] |= {unit[t] for t in targets if unit[t] != unit[f]}
    for cycle in circles(units):
        problems.append(f"circle of {len(cycle)} modules: " + ", ".join(cycle))
    # Inside a folder: between its files other than mod.rs (a folder's mod.rs declares, re-exports
    # and dispatches to its files, which use the types it defines: that is one module).
    inner = {f: {t for t in ts if unit[t] == unit[f] and t.name != "mod.rs"} for f, ts in edges.items() if f.name != "mod.rs"}
    inner = {f: {t for t in ts if t in inner} for f, ts in inner.items()}
    for cycle in circles(inner):
        problems.append(f"circle of {len(cycle)} files: " + ", ".join(rel[f] for f in cycle))
    if layered:
        for f, targets in sorted(edges.items()):
            for t in sorted(targets):
                if layer(rel[t]) > layer(rel[f]):
                    problems.append(f"upward import: {rel[f]} (layer {layer(rel[f])}) uses {rel[t]} (layer {layer(rel[t])})")
    arrows = sum(len(t) for t in edges.values())
    return len(files), arrows, len(units), problems


def circles(edges):
    """The strongly connected components of more than one file (Tarjan), as lists."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    roots = [Path(a) for a in sys.argv[1:]] or [ROOT, ROOT / "core"]
    failed = False
    for root in roots:
        src = root / "src"
        layered = (root / "src" / "api").is_dir()
        n, arrows, depth, problems = check(src, layered)
        print(f"{root}/src: {n} files in {depth} modules, {arrows} import arrows, "
              f"{'layers checked, ' if layered else ''}{len(problems)} problems")
        for p in problems:
            print("  " + p)
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
