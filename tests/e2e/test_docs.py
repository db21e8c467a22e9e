"""The docs, executed: every SQL example block of README.md and docs/reference.md runs against
the cluster, as the role the docs name, and each result a block shows is compared; and every
function of schema auth and every setting of mfa_auth appears in docs/reference.md with its
signature, default and context. A doc that drifts from behaviour fails here.

How a block is marked (an HTML comment, invisible when rendered), right before its ```sql fence:

    <!-- doctest: as=ROLE [needs=ROLE,ROLE] [setup] -->   run it; `setup` blocks run first
    <!-- doctest: skip (why) -->                           not run (say why)

ROLE is a role the docs name (app_auth, alice, postgres for "as a superuser") or PUBLIC (a role
with no grant at all). `needs` roles are created first (NOLOGIN). Inside a block, a comment line
`-- as ROLE ...` continues as ROLE, in a new connection. Placeholders in quotes with an ellipsis
are the values the block made earlier: '…factor_id…', '…challenge_id…', '…session_id…' (one
session, made aal2 by the first verification), '…new session_id…', '6f0d…-user-uuid' (one
user), '…credential JSON…' (a software authenticator's answer to the last WebAuthn challenge).
A six-digit code given to a verification is replaced by the current TOTP code of the factor the
block enrolled (pyotp), but '000000' (a wrong code); a recovery code by one the block generated.
A statement ends at a line ending with ';' outside dollar quotes (function bodies).

What a statement's trailing comment shows is compared when it starts with a value: `true`/`t`,
`false`/`f`, `aal1`/`aal2`, a number, a quoted string, `N rows`/`N codes`, `a | b | c…` (the
row's columns; `…` ends a prefix), or `ERROR SQLSTATE`. Other comments (`e.g. …`, prose) are
not compared."""
import json
import os
import re
import time
import uuid

import psycopg
import pyotp
import pytest
from softkey import SoftKey

from conftest import connect

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DB = "app"  # the database the docs' ALTER DATABASE statements name
ROLES = ("app_auth", "alice", "ops", "security_team", "mfa_doc_public")
MARK = re.compile(r"^<!--\s*doctest:\s*(.*?)\s*-->\s*$")
RESULTS = {"statements": 0, "compared": 0, "blocks": 0}


def read(name):
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


def blocks(name):
    """The ```sql blocks of a file: (line number, marker options or None, text)."""
    lines, out = read(name).splitlines(), []
    for i, line in enumerate(lines):
        if line.strip() == "```sql":
            mark = MARK.match(lines[i - 1]) if i else None
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            out.append((i + 1, mark.group(1) if mark else None, "\n".join(lines[i + 1:end])))
    return out


def options(mark):
    opts = {"needs": [], "setup": False}
    for word in mark.split():
        if word.startswith("as="):
            opts["as"] = word[3:]
        elif word.startswith("needs="):
            opts["needs"] = word[6:].split(",")
        elif word == "setup":
            opts["setup"] = True
    return opts


def split_comment(line):
    """(code, trailing comment) of a line, the comment outside quotes."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == "'":
            quoted = not quoted
        elif not quoted and line.startswith("--", i):
            return line[:i].rstrip(), line[i + 2:].strip()
    return line.rstrip(), ""


def statements(text):
    """(role switch or None, SQL, expected comment) per statement of a block."""
    out, code, comment = [], [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            m = re.match(r"--\s*as (\w+)(?=,|\s|$)", stripped)
            if m and not code and m.group(1) not in ("a", "an", "the"):
                out.append((m.group(1), None, ""))
            continue
        part, c = split_comment(line)
        if part.strip():
            code.append(part)
            comment = c
        # (Inside a $$ body the statement goes on: an odd number of $$ so far.)
        if code and part.rstrip().endswith(";") and "\n".join(code).count("$$") % 2 == 0:
            out.append((None, "\n".join(code), comment))
            code, comment = [], ""
    assert not code, f"a statement without its ';': {code}"
    return out


class Context:
    def __init__(self):
        self.values = {"user": str(uuid.uuid4()), "session": str(uuid.uuid4()), "new session": str(uuid.uuid4())}
        self.codes, self.secret, self.webauthn, self.key = [], None, None, SoftKey()
        self.origin = None

    def placeholder(self, text):
        key = text.replace("…", " ").strip()
        if "user-uuid" in key or key == "6f0d":
            return self.values["user"]
        for name in ("new session", "session", "factor", "challenge"):
            if key.startswith(name) or key.endswith(name) or f" {name}" in f" {key}":
                found = self.values.get(name)
                assert found, f"'{text}': no {name} made by the block so far"
                return found
        if key.startswith("credential"):
            assert self.webauthn, f"'{text}': no WebAuthn challenge so far"
            answer = (self.key.create if self.webauthn["type"] == "create" else self.key.get)(self.webauthn, self.origin)
            return json.dumps(answer)
        raise AssertionError(f"placeholder '{text}' has no value")

    def fill(self, sql):
        if re.search(r"verify_challenge|verify_factor|mfa_verify\(", sql) and self.secret:
            if 30 - time.time() % 30 < 2:
                time.sleep(30 - time.time() % 30 + 0.2)
            sql = re.sub(r"'(?!000000')\d{6}'", f"'{pyotp.TOTP(self.secret).now()}'", sql, count=1)
        if "recovery_code" in sql and "verify" in sql:
            def code(m):
                assert self.codes, "a recovery code, but the block generated none"
                c = self.codes.pop(0)
                return "'" + (c.upper().replace("-", " ") if " " in m.group(0) else c) + "'"
            sql = re.sub(r"'[0-9a-zA-Z]{4}[- ][0-9a-zA-Z]{4}[- ][0-9a-zA-Z]{4}[- ][0-9a-zA-Z]{4}'", code, sql)
        return re.sub(r"'([^']*…[^']*)'", lambda m: "'" + self.placeholder(m.group(1)).replace("'", "''") + "'", sql)

    def remember(self, sql, cur, rows):
        names = [d.name for d in cur.description or []]
        if not rows:
            return
        first = dict(zip(names, rows[0], strict=True))
        for col, name in (("factor_id", "factor"), ("challenge_id", "challenge")):
            if col in first:
                self.values[name] = str(first[col])
        if len(names) == 1 and re.match(r"enroll_", names[0]):
            self.values["factor"] = str(rows[0][0])
        if "secret" in first and isinstance(first["secret"], str):
            self.secret = first["secret"]
        if "webauthn" in first and first["webauthn"]:
            self.webauthn = first["webauthn"]
        if names and names[0] in ("generate_recovery_codes", "generate_my_recovery_codes"):
            self.codes = [r[0] for r in rows]


def value_of(v):
    return v if isinstance(v, (bool, int)) or v is None else str(v)


def compare(expected, sql, cur, rows, error):
    """Whether the comment shows a value, and if so that the result is it."""
    e = expected
    m = re.match(r"ERROR (\w{5})\b", e)
    if m:
        assert error is not None and error.sqlstate == m.group(1), f"{sql}\nexpected {e}, got {error!r}"
        return True
    assert error is None, f"{sql}\nraised {error.sqlstate}: {error}"
    m = re.match(r"(\d+) (rows|codes)\b", e)
    if m:
        assert len(rows) == int(m.group(1)), f"{sql}\nexpected {e}, got {len(rows)} rows"
        return True
    if " | " in e.split(":")[0] or re.match(r"[^ ]+ \| ", e):
        want = [w.strip() for w in e.split(" | ")]
        got = [str(v) for v in rows[0]]
        for w, g in zip(want, got, strict=False):  # (a doc may show the first columns only)
            assert g.startswith(w[:-1]) if w.endswith("…") else g == w, f"{sql}\nexpected {e}, got {got}"
        return True
    m = re.match(r"(true|false|t|f|aal1|aal2|aal3|-?\d+|'[^']*')(?=$|[\s:;,(])", e)
    if not m:
        return False
    assert len(rows) == 1 and len(rows[0]) == 1, f"{sql}\nexpected one value ({e}), got {rows}"
    got, w = value_of(rows[0][0]), m.group(1)
    want = {"true": True, "t": True, "false": False, "f": False}.get(w, w)
    if isinstance(want, str) and want.startswith("'"):
        want = want[1:-1]
    elif isinstance(want, str) and re.fullmatch(r"-?\d+", want):
        want = int(want)
    assert got == want, f"{sql}\nexpected {e!r}, got {got!r}"
    return True


def run_block(ctx, line, opts, text, name):
    role = opts["as"]
    for r in opts["needs"]:
        with connect(DB) as c:
            if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r,)).fetchone():
                c.execute(f'CREATE ROLE "{r}"')
    conn = open_as(role)
    try:
        for switch, sql, expected in statements(text):
            if switch:
                conn.close()
                conn = open_as(switch)
                continue
            sql = ctx.fill(sql)
            error, rows, cur = None, [], None
            try:
                cur = conn.execute(sql)
                rows = cur.fetchall() if cur.description else []
            except psycopg.Error as ex:
                error = ex
            RESULTS["statements"] += 1
            try:
                if compare(expected, sql, cur, rows, error):
                    RESULTS["compared"] += 1
            except AssertionError as ex:
                raise AssertionError(f"{name}:{line}: {ex}") from None
            if cur is not None and error is None:
                ctx.remember(sql, cur, rows)
            if "webauthn_origins" in sql and "=" in sql:
                ctx.origin = re.search(r"'(https?://[^',]+)", sql).group(1)
    finally:
        conn.close()
    RESULTS["blocks"] += 1


def open_as(role):
    if role == "PUBLIC":
        role = "mfa_doc_public"
        with connect(DB) as c:
            if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                c.execute(f"CREATE ROLE {role} LOGIN")
    return connect(DB, user=role)


def fresh_database():
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        for r in ROLES:
            if c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r,)).fetchone():
                for db in [d[0] for d in c.execute("SELECT datname FROM pg_database WHERE datallowconn")]:
                    with connect(db) as d:
                        d.execute(f'DROP OWNED BY "{r}"')
                c.execute(f'DROP ROLE "{r}"')
        c.execute(f"CREATE DATABASE {DB}")
    with connect(DB) as c:
        c.execute("CREATE EXTENSION mfa_auth")


def run_file(name, with_setup_from=()):
    fresh_database()
    ctx = Context()
    found = [(name, *b) for b in blocks(name)]
    unmarked = [f"{name}:{line}" for _, line, mark, _ in found if mark is None]
    assert not unmarked, f"SQL blocks without a doctest marker: {unmarked}"
    setup = [(n, *b) for other in with_setup_from for n, b in [(other, b) for b in blocks(other)]
             if b[1] and options(b[1])["setup"]]
    todo = [b for b in setup + found if b[2] and options(b[2])["setup"]]
    todo += [b for b in found if b[2] and not b[2].startswith("skip") and not options(b[2])["setup"]]
    for n, line, mark, text in todo:
        run_block(ctx, line, options(mark), text, n)
    return len(todo)


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print(f"\n  docs: {RESULTS['blocks']} example blocks, {RESULTS['statements']} statements run, "
          f"{RESULTS['compared']} shown results compared")
    fresh_database()
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def test_reference_examples_run_as_documented():
    assert run_file("docs/reference.md") >= 6


def test_readme_tour_runs_as_documented():
    """The README's tour, as the trusted role the README sends to "Granting access"."""
    assert run_file("README.md", with_setup_from=("docs/reference.md",)) >= 5


# --- the reference against the catalog ------------------------------------------------------
SYNONYMS = [("timestamp with time zone", "timestamptz"), ("integer", "int"), ("boolean", "bool")]


def normal_type(t):
    t = t.strip()
    for long, short in SYNONYMS:
        t = re.sub(rf"\b{long}\b", short, t)
    return t


def split_args(args):
    """Top-level comma split (defaults may hold calls)."""
    out, depth, cur = [], 0, ""
    for ch in args:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse_arg(a):
    """(name, type, default or None) of `name type [DEFAULT expr]`."""
    a = a.removeprefix("IN ")  # (how the catalog writes a procedure's arguments)
    m = re.match(r'^("?\w+"?)\s+(.+?)(?:\s+DEFAULT\s+(.+))?$', a, re.S)
    assert m, f"cannot read the argument {a!r}"
    return m.group(1), normal_type(m.group(2)), m.group(3)


def documented_signatures():
    """name -> [args text] of every `auth.name(...)` in a table row of docs/reference.md."""
    found = {}
    for line in read("docs/reference.md").splitlines():
        if not line.startswith("|"):
            continue
        for span in re.findall(r"`((?:CALL )?auth\.\w+\(.*?\))`", line):
            span = span.removeprefix("CALL ")
            m = re.match(r"auth\.(\w+)\((.*)\)$", span)
            try:  # a call written in a sentence (`auth.session_aal(auth.session_id(), …)`) is no signature
                [parse_arg(a) for a in split_args(m.group(2))]
            except AssertionError:
                continue
            found.setdefault(m.group(1), []).append(m.group(2))
    return found


def test_every_function_is_documented_with_its_signature(database):
    docs = documented_signatures()
    with connect() as c:
        funcs = c.execute("""SELECT p.proname, pg_get_function_arguments(p.oid)
                               FROM pg_proc p WHERE p.pronamespace = 'auth'::regnamespace
                              ORDER BY 1, 2""").fetchall()
        problems, checked = [], 0
        for name, args in funcs:
            want = [parse_arg(a) for a in split_args(args)]
            candidates = [[parse_arg(a) for a in split_args(d)] for d in docs.get(name, [])]
            match = None
            for cand in candidates:
                if [(n, t) for n, t, _ in cand] == [(n, t) for n, t, _ in want]:
                    match = cand
            if match is None:
                problems.append(f"auth.{name}({args}): not in docs/reference.md with these arguments "
                                f"(documented: {docs.get(name)})")
                continue
            for (n, t, d_doc), (_, _, d_cat) in zip(match, want, strict=True):
                if (d_doc is None) != (d_cat is None):
                    problems.append(f"auth.{name}: argument {n}: DEFAULT {d_cat} in the catalog, {d_doc} documented")
                elif d_doc is not None:
                    same = c.execute(f"SELECT ({d_doc})::{t} IS NOT DISTINCT FROM ({d_cat})::{t}").fetchone()[0]
                    if not same:
                        problems.append(f"auth.{name}: argument {n}: DEFAULT {d_cat} in the catalog, {d_doc} documented")
            checked += 1
    print(f"\n  reference: {checked} of {len(funcs)} functions and procedures of schema auth documented "
          f"with their exact arguments and defaults")
    assert not problems, "\n".join(problems)


def test_every_setting_is_documented_with_its_default_and_context(database):
    text = read("docs/reference.md")
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\| `([\w.]+)` \| (.*?) \| (\w+) \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    with connect() as c:
        settings = c.execute("""SELECT name, boot_val, unit, context FROM pg_settings
                                 WHERE name LIKE 'mfa\\_auth.%' OR name = 'request.jwt.claims' ORDER BY 1""").fetchall()
        hidden = c.execute("SELECT current_setting('mfa_auth.encryption_keys', true) IS NOT NULL").fetchone()[0]
    problems = []
    for name, boot, unit, context in settings:
        if name not in rows:
            problems.append(f"{name}: no row in the Settings table")
            continue
        default, doc_context = rows[name]
        if doc_context != context:
            problems.append(f"{name}: context {context}, documented {doc_context}")
        want = f"{boot}{unit or ''}" if boot not in ("", None) else "empty"
        if want == "empty":
            ok = default.startswith("empty")
        else:
            ok = f"`{want}`" in default or (unit == "s" and f"`{boot}s`" in default)
        if not ok:
            problems.append(f"{name}: default {want!r}, documented {default!r}")
    # mfa_auth.encryption_keys is left out of pg_settings and SHOW ALL (GUC_NO_SHOW_ALL): it
    # exists, and the reference says where it does not show.
    assert hidden and "mfa_auth.encryption_keys" in rows
    assert "mfa_auth.encryption_keys" not in [s[0] for s in settings]
    print(f"\n  reference: {len(settings) + 1} settings with their default and context")
    assert not problems, "\n".join(problems)


def test_the_errors_table_names_each_sqlstate_rightly(database):
    """Each row's SQLSTATE and condition name agree (psycopg's table of PostgreSQL's
    errcodes), and every SQLSTATE the library raises has a row."""
    table = re.findall(r"^\| (\w{5}) \| `(\w+)` \|", read("docs/reference.md"), re.M)
    problems = []
    for code, name in table:
        cls = psycopg.errors.lookup(code)
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower().rstrip("_")
        if snake != name:
            problems.append(f"{code}: documented as {name}, PostgreSQL calls it {snake}")
    # (PostgreSQL's C names prefix some classes: ERRCODE_T_R_SERIALIZATION_FAILURE is serialization_failure.)
    raised = {re.sub(r"^T_R_", "", n) for n in re.findall(r"ERRCODE_(\w+)", read("src/pg/error.rs"))}
    documented = {n for _, n in table}
    for r in sorted(raised):
        if r.lower() not in documented:
            problems.append(f"the library raises {r.lower()}, which the Errors table does not list")
    with open(os.path.join(ROOT, "docs/security.md")) as f:
        m = re.search(r"The SECURITY DEFINER functions\s+\((\d+),", f.read())
    with connect() as c:
        n = c.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'auth'::regnamespace AND prosecdef").fetchone()[0]
    if not m or int(m.group(1)) != n:
        problems.append(f"docs/security.md gives {m and m.group(1)} SECURITY DEFINER functions; schema auth has {n}")
    print(f"\n  reference: {len(table)} Errors-table rows named as PostgreSQL names them, "
          f"{len(raised)} SQLSTATEs the library raises all listed; {n} SECURITY DEFINER functions as security.md says")
    assert not problems, "\n".join(problems)
