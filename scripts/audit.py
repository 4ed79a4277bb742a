"""Known vulnerabilities in both virtualenvs, against the accepted ones (`make audit`).

    python scripts/audit.py                              # .venv and .venv-rasa ($VENV, $RASA_VENV)
    python scripts/audit.py --venv rasa=.venv-rasa       # one of them
    python scripts/audit.py --report rasa=report.json    # a saved `pip-audit -f json` report

For each virtualenv it lists what is installed (with that venv's own Python), asks pip-audit
about exactly those versions (`-r --no-deps --disable-pip`: nothing is resolved or installed)
and compares the findings with audit/known-vulnerabilities.yml, where every accepted
vulnerability has a reason. Exit status:
  0  every finding is a known exception (stale exceptions are only a warning);
  1  new findings: a table says which and what to do;
  2  the audit could not be done: vulnerability service unreachable, a venv or pip-audit
     missing, a malformed exceptions file. The message says what to change.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

REPO = Path(__file__).resolve().parent.parent
EXCEPTIONS = REPO / "audit" / "known-vulnerabilities.yml"
# The two virtualenvs, by the name the exceptions file uses, and where their pins live.
VENVS = {"app": ("VENV", ".venv", "pyproject.toml"), "rasa": ("RASA_VENV", ".venv-rasa", "requirements-rasa.txt")}
ENTRY_KEYS = {"package", "id", "aliases", "venv", "reason"}

# Run with a venv's own Python: its installed distributions as [name, version, editable].
LIST_INSTALLED = """
import importlib.metadata as m, json
out = []
for d in m.distributions():
    direct = d.read_text("direct_url.json")
    editable = bool(direct and json.loads(direct).get("dir_info", {}).get("editable"))
    if d.metadata["Name"]:
        out.append([d.metadata["Name"], d.version, editable])
print(json.dumps(out))
"""


class AuditError(Exception):
    """The audit could not be done; the message says why and what to change."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Finding:
    venv: str
    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()
    description: str = ""

    @property
    def ids(self) -> set[str]:
        return {self.id, *self.aliases}


@dataclass(frozen=True)
class KnownVulnerability:
    package: str
    id: str
    venv: str
    reason: str
    aliases: tuple[str, ...] = ()

    def matches(self, finding: Finding) -> bool:
        return (self.venv == finding.venv and canonical(self.package) == canonical(finding.package)
                and bool({self.id, *self.aliases} & finding.ids))


# ---------------------------------------------------------------- the exceptions file

def load_exceptions(path: Path) -> list[KnownVulnerability]:
    """The accepted vulnerabilities; AuditError naming the file and the entry when one is malformed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AuditError(f"{path}: cannot read the exceptions file ({error.strerror}).") from None
    except yaml.YAMLError as error:
        raise AuditError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("exceptions", []), (list, type(None))):
        raise AuditError(f"{path}: expected a mapping with an `exceptions:` list at the top.")
    known = []
    for number, entry in enumerate(data.get("exceptions") or [], start=1):
        where = f"{path}: entry {number}"
        if not isinstance(entry, dict):
            raise AuditError(f"{where}: expected a mapping with {', '.join(sorted(ENTRY_KEYS))}; got {entry!r}.")
        where += f" ({entry.get('package', '?')} {entry.get('id', '?')})"
        if unknown := set(entry) - ENTRY_KEYS:
            raise AuditError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                             f"the keys are {', '.join(sorted(ENTRY_KEYS))}.")
        for key in ("package", "id", "venv", "reason"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise AuditError(f"{where}: `{key}` is missing or empty (or not text); every exception needs "
                                 "a package, an id, a venv and a one-line reason.")
        if entry["venv"] not in VENVS:
            raise AuditError(f"{where}: venv {entry['venv']!r} is not one of {', '.join(VENVS)}.")
        if "\n" in entry["reason"].strip():
            raise AuditError(f"{where}: the reason must be one line.")
        aliases = entry.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(alias, str) and alias for alias in aliases):
            raise AuditError(f"{where}: `aliases` must be a list of ids, e.g. [CVE-2024-1234, GHSA-xxxx-xxxx-xxxx].")
        known.append(KnownVulnerability(entry["package"], entry["id"], entry["venv"], entry["reason"].strip(),
                                        tuple(aliases)))
    return known


# ---------------------------------------------------------------- running pip-audit

def installed(venv: Path) -> list[tuple[str, str, bool]]:
    """(name, version, editable) of every distribution in the venv, listed by its own Python."""
    python = venv / "bin" / "python"
    if not python.exists():
        raise AuditError(f"no Python at {python}: create the virtualenvs with `make setup` (or point VENV/RASA_VENV "
                         "at them).")
    result = subprocess.run([str(python), "-I", "-c", LIST_INSTALLED], capture_output=True, text=True)
    if result.returncode != 0:
        raise AuditError(f"{python} could not list its packages: {result.stderr.strip()[-500:]}")
    unique = {canonical(name): (name, version, editable) for name, version, editable in json.loads(result.stdout)}
    return sorted(unique.values(), key=lambda item: canonical(item[0]))


def requirements(packages: list[tuple[str, str, bool]]) -> str:
    """Pinned requirements for pip-audit; local labels go (torch 2.13.0+cpu is torch 2.13.0 on PyPI)."""
    return "".join(f"{name}=={version.split('+')[0]}\n" for name, version, editable in packages if not editable)


def run_pip_audit(requirements_text: str, service: str, timeout: int) -> dict:
    try:
        import pip_audit  # noqa: F401
    except ImportError:
        raise AuditError(f"pip-audit is not installed in {sys.executable}: run `make setup` (it is in the dev "
                         "extra) or `pip install pip-audit`.") from None
    with tempfile.TemporaryDirectory() as folder:
        reqs, out = Path(folder) / "requirements.txt", Path(folder) / "report.json"
        reqs.write_text(requirements_text)
        command = [sys.executable, "-m", "pip_audit", "-r", str(reqs), "--no-deps", "--disable-pip", "-f", "json",
                   "-o", str(out), "-s", service, "--progress-spinner", "off", "--timeout", str(timeout)]
        result = subprocess.run(command, capture_output=True, text=True)
        try:
            return json.loads(out.read_text())
        except (OSError, ValueError):
            last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise AuditError(f"pip-audit could not query the vulnerability service ({service}): {last}\n"
                             "Check the network (pypi.org's JSON API for `pypi`, api.osv.dev for `osv`) "
                             "and run it again.") from None


def parse_report(venv: str, report: dict) -> tuple[list[Finding], list[tuple[str, str]]]:
    """Findings and skipped (name, reason) pairs from pip-audit's JSON report."""
    findings, skipped = [], []
    try:
        for dependency in report["dependencies"]:
            if "skip_reason" in dependency:
                skipped.append((dependency["name"], dependency["skip_reason"]))
                continue
            for vuln in dependency.get("vulns", []):
                findings.append(Finding(venv, dependency["name"], dependency.get("version", "?"), vuln["id"],
                                        tuple(vuln.get("aliases", [])), tuple(vuln.get("fix_versions", [])),
                                        vuln.get("description", "")))
    except (KeyError, TypeError, AttributeError) as error:
        raise AuditError(f"{venv}: not a pip-audit JSON report (no {error} where one was expected).") from None
    return findings, skipped


def check_skipped(venv: str, audited: int, skipped: list[tuple[str, str]]) -> None:
    """An audit that skipped packages is no pass: say why and what to do."""
    if not skipped:
        return
    not_found = [name for name, reason in skipped if reason.startswith("Dependency not found on PyPI")]
    if len(not_found) == audited:
        example = skipped[0][1].rsplit(": ", 1)[-1]
        raise AuditError(
            f"{venv}: the vulnerability service answered for none of its {audited} packages (e.g. {example}). "
            "pip-audit's PyPI service reads https://pypi.org/pypi/<name>/<version>/json, and this network answers "
            "404 there (a mirror or proxy that serves only the package index). Run `make audit` where pypi.org's "
            "JSON API is reachable (or run scripts/audit.py --service osv where api.osv.dev is).")
    lines = "\n".join(f"  {name}: {reason}" for name, reason in skipped)
    raise AuditError(f"{venv}: {len(skipped)} of {audited} packages could not be audited:\n{lines}")


# ---------------------------------------------------------------- comparing and reporting

def compare(findings: list[Finding], known: list[KnownVulnerability], venvs: set[str]
            ) -> tuple[list[Finding], list[Finding], list[KnownVulnerability]]:
    """(new findings, accepted findings, stale exceptions of the venvs audited this time)."""
    new = [finding for finding in findings if not any(entry.matches(finding) for entry in known)]
    accepted = [finding for finding in findings if finding not in new]
    stale = [entry for entry in known if entry.venv in venvs and not any(entry.matches(f) for f in findings)]
    return new, accepted, stale


def advice(finding: Finding) -> str:
    """What to do, in a table cell: the lowest fixed release above the installed one, or none."""
    pins = VENVS[finding.venv][2] if finding.venv in VENVS else "the requirements"
    try:
        fixes = sorted((Version(v) for v in finding.fix_versions if Version(v) > Version(finding.version)))
    except InvalidVersion:
        fixes = [finding.fix_versions[0]] if finding.fix_versions else []
    if fixes:
        return f"upgrade to {fixes[0]} ({pins} or what pins it), or accept with a reason"
    return "no fixed release: drop it, or accept with a reason"


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * width for width in widths]), *map(line, rows)])


def report(new: list[Finding], accepted: list[Finding], stale: list[KnownVulnerability], exceptions: Path) -> int:
    shown = exceptions.relative_to(REPO) if exceptions.is_relative_to(REPO) else exceptions
    print(f"audit: {len(accepted)} known (accepted in {shown}), {len(new)} new")
    if stale:
        print(f"\nwarning: {len(stale)} exception(s) no longer found; remove them from {shown}:")
        print(table([[e.venv, e.package, e.id, e.reason] for e in stale], ["venv", "package", "id", "reason"]))
    if new:
        print("\nNEW vulnerabilities:")
        rows = [[f.venv, f.package, f.version, f.id, ", ".join(sorted(f.aliases)) or "-",
                 ", ".join(f.fix_versions) or "-", advice(f)] for f in new]
        print(table(rows, ["venv", "package", "version", "id", "aliases", "fix versions", "what to do"]))
        print(f"\nTo accept one, add it to {shown} with a one-line reason (docs/security.md).")
        return 1
    return 0


# ---------------------------------------------------------------- command line

def pairs(values: list[str], flag: str) -> dict[str, str]:
    chosen = {}
    for value in values:
        name, _, path = value.partition("=")
        if name not in VENVS or not path:
            raise AuditError(f"{flag} {value!r}: expected NAME=PATH with NAME one of {', '.join(VENVS)}.")
        chosen[name] = path
    return chosen


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", action="append", default=[], metavar="NAME=PATH",
                        help="audit this virtualenv (app or rasa); default both, from $VENV and $RASA_VENV")
    parser.add_argument("--report", action="append", default=[], metavar="NAME=FILE",
                        help="use a saved `pip-audit -f json` report for that venv instead of running pip-audit")
    parser.add_argument("--exceptions", type=Path, default=EXCEPTIONS, help="the accepted vulnerabilities (YAML)")
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi", help="pip-audit's vulnerability service")
    parser.add_argument("--timeout", type=int, default=15, help="seconds per request to the vulnerability service")
    return parser


def audit_venv(name: str, path: str, service: str, timeout: int) -> list[Finding]:
    venv = Path(path) if Path(path).is_absolute() else REPO / path
    packages = installed(venv)
    found, skipped = parse_report(name, run_pip_audit(requirements(packages), service, timeout))
    audited = sum(not editable for _, _, editable in packages)
    check_skipped(name, audited, skipped)
    editable = ", ".join(package for package, _, is_editable in packages if is_editable)
    print(f"audit: {name} ({path}): {audited} packages, {len(found)} finding(s)"
          + (f"; not audited (editable, this project): {editable}" if editable else ""))
    return found


def audit_report(name: str, file: str) -> list[Finding]:
    try:
        data = json.loads(Path(file).read_text())
    except (OSError, ValueError) as error:
        raise AuditError(f"--report {name}={file}: not a readable pip-audit JSON report ({error}).") from None
    found, skipped = parse_report(name, data)
    check_skipped(name, len(data["dependencies"]), skipped)
    print(f"audit: {name} ({file}): {len(data['dependencies'])} packages, {len(found)} finding(s)")
    return found


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        known = load_exceptions(args.exceptions)
        reports = pairs(args.report, "--report")
        venvs = pairs(args.venv, "--venv") or ({} if reports else
                                                {name: os.environ.get(var) or default
                                                 for name, (var, default, _) in VENVS.items()})
    except AuditError as error:
        print(f"audit: {error}", file=sys.stderr)
        return 2
    findings, failed = [], False
    jobs = [(audit_report, name, file) for name, file in reports.items()]
    jobs += [(partial(audit_venv, service=args.service, timeout=args.timeout), name, path)
             for name, path in venvs.items()]
    for job, name, where in jobs:
        try:
            findings += job(name, where)
        except AuditError as error:  # say so, and still audit the other venv
            print(f"audit: {error}", file=sys.stderr)
            failed = True
    if failed:
        print("audit: not done (see above); nothing was compared with the exceptions.", file=sys.stderr)
        return 2
    new, accepted, stale = compare(findings, known, set(venvs) | set(reports))
    return report(new, accepted, stale, args.exceptions)


if __name__ == "__main__":
    sys.exit(main())
