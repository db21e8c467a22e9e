"""The release metadata agrees with the one place the version is written (Cargo.toml's
[workspace.package]): META.json (PGXN meta-spec 1.0.0, its required fields and the ones the
release needs), the control file (which takes the version from the build), CHANGELOG.md (a
section for the version) and the PostgreSQL majors the test command runs (scripts/lib.sh).
Prints what it checked; exits 1 naming each problem."""
import json
import pathlib
import re
import sys
import tomllib

root = pathlib.Path(__file__).resolve().parent.parent
problems = []


def need(cond, what):
    if not cond:
        problems.append(what)


version = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["package"]["version"]
for crate in ("Cargo.toml", "core/Cargo.toml"):
    pkg = tomllib.loads((root / crate).read_text())["package"]
    need(pkg.get("version") == {"workspace": True}, f"{crate}: version is not `version.workspace = true`")

meta = json.loads((root / "META.json").read_text())
# meta-spec 1.0.0: required name, abstract, maintainer, license, provides, meta-spec, version.
for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec", "prereqs", "resources", "tags"):
    need(key in meta, f"META.json: no {key}")
need(meta.get("name") == "mfa_auth", "META.json: name is not mfa_auth")
need(meta.get("version") == version, f"META.json: version {meta.get('version')} is not Cargo.toml's {version}")
need(meta.get("meta-spec", {}).get("version") == "1.0.0", "META.json: meta-spec version is not 1.0.0")
need(meta.get("license") == "apache_2_0", "META.json: license is not apache_2_0 (Cargo.toml: Apache-2.0)")
need(re.fullmatch(r"[^<>]+ <[^@<>\s]+@[^@<>\s]+>", str(meta.get("maintainer", ""))) is not None,
     "META.json: maintainer is not 'Name <address>' (the packages' Maintainer field)")
provided = meta.get("provides", {}).get("mfa_auth", {})
for key in ("abstract", "file", "docfile", "version"):
    need(key in provided, f"META.json: provides.mfa_auth has no {key}")
need(provided.get("version") == version, f"META.json: provides.mfa_auth.version is not {version}")
for key in ("file", "docfile"):
    need((root / provided.get(key, "-")).is_file(), f"META.json: provides.mfa_auth.{key} {provided.get(key)} is no file")
need(isinstance(meta.get("tags"), list) and meta["tags"], "META.json: no tags")

# The PostgreSQL range covers every major the test command runs, and none past the newest.
lib = (root / "scripts/lib.sh").read_text()
majors = [int(re.search(r"^PG_MAJOR=(\d+)", lib, re.M)[1])]
majors += [int(v) for v in re.search(r'^CI_MAJORS="([\d ]*)"', lib, re.M)[1].split()]
for phase in ("runtime", "build"):
    spec = meta.get("prereqs", {}).get(phase, {}).get("requires", {}).get("PostgreSQL", "")
    lo = re.search(r">=\s*(\d+)\.0\.0", spec)
    hi = re.search(r"<\s*(\d+)\.0\.0", spec)
    need(lo and hi, f"META.json: prereqs.{phase} PostgreSQL '{spec}' is not '>= A.0.0, < B.0.0'")
    if lo and hi:
        need(int(lo[1]) == min(majors) and int(hi[1]) == max(majors) + 1,
             f"META.json: prereqs.{phase} PostgreSQL '{spec}' is not the tested majors {majors}")

control = (root / "mfa_auth.control").read_text()
need("default_version = '@CARGO_VERSION@'" in control, "mfa_auth.control: default_version does not come from the build")
# The test-helper extension ships with this version: its control file and script say it.
helper = (root / "mfa_auth_test" / "mfa_auth_test.control").read_text()
need(f"default_version = '{version}'" in helper, f"mfa_auth_test.control: default_version is not {version}")
need((root / "mfa_auth_test" / f"mfa_auth_test--{version}.sql").exists(), f"mfa_auth_test: no mfa_auth_test--{version}.sql")
need(meta.get("provides", {}).get("mfa_auth_test", {}).get("version") == version,
     f"META.json: provides.mfa_auth_test.version is not {version}")

changelog = (root / "CHANGELOG.md").read_text()
sections = re.findall(r"^## (\d+\.\d+\.\d+)", changelog, re.M)
need(sections[:1] == [version], f"CHANGELOG.md: the newest section is {sections[:1]}, not {version}")
for old in ("0.1.0", "0.2.0"):
    need(old in sections, f"CHANGELOG.md: no section for {old}")
need("ALTER EXTENSION mfa_auth UPDATE" in changelog, "CHANGELOG.md: no upgrade command")

for p in problems:
    print("release metadata:", p)
print(f"release metadata: version {version} in Cargo.toml; META.json, mfa_auth.control, CHANGELOG.md "
      f"({len(sections)} releases) and the tested majors {majors}: {len(problems)} problems")
sys.exit(1 if problems else 0)
