"""`make audit` (scripts/audit.py): findings against the accepted ones, on hand-written pip-audit reports.

No network: reports are fixtures, and the one test that runs pip-audit's code path fakes the process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import audit

FIXTURES = Path(__file__).parent / "fixtures"
RASA_REPORT = f"rasa={FIXTURES / 'rasa-report.json'}"

ALL_KNOWN = """
exceptions:
  - package: tensorflow
    id: PYSEC-2099-1
    venv: rasa
    reason: "Rasa 3.6 pins tensorflow 2.12; the affected op is not used"
  - package: Sanic                 # names compare the way pip does
    id: SOMETHING-ELSE
    aliases: [CVE-2099-2002]       # a match on an alias counts
    venv: rasa
    reason: "no fixed release; Rasa serves no static files"
  - package: requests
    id: PYSEC-2099-3
    venv: rasa
    reason: "upgrade pending: 2.32.0"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "known.yml"
    path.write_text(text)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = audit.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_all_findings_known_passes(tmp_path, capsys):
    status, out, err = run(capsys, "--report", RASA_REPORT, "--exceptions", str(write(tmp_path, ALL_KNOWN)))
    assert status == 0, out + err
    assert "3 known" in out and "0 new" in out
    assert "warning" not in out


def test_new_finding_fails_with_a_table_naming_it(tmp_path, capsys):
    known = ALL_KNOWN.split("  - package: requests")[0]  # requests is no longer accepted
    status, out, _ = run(capsys, "--report", RASA_REPORT, "--exceptions", str(write(tmp_path, known)))
    assert status == 1
    assert "2 known" in out and "1 new" in out
    new_rows = out.split("NEW vulnerabilities:")[1]
    assert "requests" in new_rows and "2.31.0" in new_rows and "PYSEC-2099-3" in new_rows
    assert "upgrade to 2.32.0 (requirements-rasa.txt or what pins it)" in new_rows and "CVE-2099-3003" in new_rows
    assert "tensorflow" not in new_rows


def test_finding_without_a_fix_says_so(tmp_path, capsys):
    status, out, _ = run(capsys, "--report", RASA_REPORT, "--exceptions", str(write(tmp_path, "exceptions: []\n")))
    assert status == 1
    sanic_row = next(line for line in out.splitlines() if line.startswith("rasa") and "sanic" in line)
    assert "no fixed release" in sanic_row


def test_exception_for_another_venv_does_not_count(tmp_path, capsys):
    known = ALL_KNOWN.replace("venv: rasa\n    reason: \"upgrade pending", "venv: app\n    reason: \"upgrade pending")
    status, out, _ = run(capsys, "--report", RASA_REPORT, "--exceptions", str(write(tmp_path, known)))
    assert status == 1 and "requests" in out.split("NEW vulnerabilities:")[1]


def test_stale_exception_is_a_warning(tmp_path, capsys):
    stale = ALL_KNOWN + """
  - package: jinja2
    id: PYSEC-2099-9
    venv: rasa
    reason: "upgrade pending: 3.1.9"
  - package: torch
    id: PYSEC-2099-8
    venv: app                        # app was not audited this time: not stale
    reason: "upgrade pending: 9.9"
"""
    status, out, _ = run(capsys, "--report", RASA_REPORT, "--exceptions", str(write(tmp_path, stale)))
    assert status == 0
    warning = out.split("warning:")[1]
    assert "1 exception(s) no longer found" in warning and "jinja2" in warning and "PYSEC-2099-9" in warning
    assert "torch" not in warning


@pytest.mark.parametrize(("text", "says"), [
    ("exceptions: [", "not valid YAML"),
    ("- just a list\n", "`exceptions:` list"),
    ("exceptions:\n  - package: a\n    id: X-1\n    venv: rasa\n    reason: ok\n  - package: b\n    id: X-2\n"
     "    venv: rasa\n", "entry 2 (b X-2): `reason` is missing or empty"),
    ("exceptions:\n  - package: b\n    id: ''\n    venv: rasa\n    reason: ok\n", "entry 1 (b ): `id` is missing"),
    ("exceptions:\n  - package: b\n    id: X-2\n    venv: prod\n    reason: ok\n",
     "venv 'prod' is not one of app, rasa"),
    ("exceptions:\n  - package: b\n    id: X-2\n    venv: rasa\n    reasons: ok\n", "unknown key(s) reasons"),
    ("exceptions:\n  - package: b\n    id: X-2\n    venv: rasa\n    reason: ok\n    aliases: CVE-1\n",
     "`aliases` must be a list"),
    ("exceptions:\n  - tensorflow\n", "entry 1: expected a mapping"),
])
def test_malformed_exceptions_file_names_file_and_entry(tmp_path, capsys, text, says):
    path = write(tmp_path, text)
    status, out, err = run(capsys, "--report", RASA_REPORT, "--exceptions", str(path))
    assert status == 2
    assert err.startswith(f"audit: {path}") and says in err
    assert "Traceback" not in err


def test_missing_exceptions_file(tmp_path, capsys):
    status, _, err = run(capsys, "--report", RASA_REPORT, "--exceptions", str(tmp_path / "nope.yml"))
    assert status == 2 and "nope.yml: cannot read the exceptions file" in err


def test_checked_in_exceptions_are_complete():
    """Every accepted vulnerability in the real file has an id, a venv and a one-line reason."""
    known = audit.load_exceptions(audit.EXCEPTIONS)
    for entry in known:
        assert entry.id.strip() and entry.reason.strip() and entry.venv in audit.VENVS, entry
    assert len({(e.venv, audit.canonical(e.package), e.id) for e in known}) == len(known), "duplicate entries"


def test_unreachable_service_is_a_clear_failure(capsys):
    report = f"rasa={FIXTURES / 'unreachable-report.json'}"
    status, out, err = run(capsys, "--report", report, "--exceptions", str(audit.EXCEPTIONS))
    assert status == 2
    assert "answered for none of its 2 packages" in err and "pypi.org's JSON API" in err
    assert "nothing was compared" in err and "Traceback" not in err


def test_partly_skipped_audit_fails_naming_the_packages(tmp_path, capsys):
    data = json.loads((FIXTURES / "rasa-report.json").read_text())
    data["dependencies"].append({"name": "private-lib", "skip_reason": "Dependency not found on PyPI and could not "
                                                                       "be audited: private-lib (1.0)"})
    (tmp_path / "report.json").write_text(json.dumps(data))
    status, _, err = run(capsys, "--report", f"rasa={tmp_path / 'report.json'}", "--exceptions", str(audit.EXCEPTIONS))
    assert status == 2 and "1 of 5 packages could not be audited" in err and "private-lib" in err


def test_pip_audit_crash_is_a_clear_failure(monkeypatch):
    """pip-audit prints a traceback and writes no report when the service cannot be reached."""
    def fake_run(command, **kwargs):
        assert command[1:3] == ["-m", "pip_audit"] and "--no-deps" in command and "--disable-pip" in command
        return subprocess.CompletedProcess(command, 1, "", "Traceback (most recent call last):\n  ...\n"
                                           "requests.exceptions.ConnectionError: Failed to resolve 'pypi.org'")
    monkeypatch.setattr(audit.subprocess, "run", fake_run)
    with pytest.raises(audit.AuditError, match=r"could not query the vulnerability service \(pypi\): "
                                               r"requests.exceptions.ConnectionError: Failed to resolve"):
        audit.run_pip_audit("requests==2.31.0\n", "pypi", 15)


def test_bad_venv_argument(capsys):
    status, _, err = run(capsys, "--venv", "prod=.venv")
    assert status == 2 and "expected NAME=PATH with NAME one of app, rasa" in err


def test_missing_venv_says_how_to_create_it(tmp_path, capsys):
    status, _, err = run(capsys, "--venv", f"rasa={tmp_path / 'none'}", "--exceptions", str(audit.EXCEPTIONS))
    assert status == 2 and "make setup" in err


def test_requirements_from_a_venv_listing():
    """This venv's own listing: the editable project is left out, local labels are dropped."""
    packages = audit.installed(Path(sys.prefix))
    assert any(name == "pytest" for name, _, _ in packages)
    lines = audit.requirements(packages + [("torch", "2.13.0+cpu", False), ("mine", "0.1", True)]).splitlines()
    assert "torch==2.13.0" in lines and not any(line.startswith("mine==") for line in lines)
    assert all("==" in line and "+" not in line for line in lines)


def test_advice_picks_the_fix_on_the_installed_branch():
    finding = audit.Finding("rasa", "tensorflow", "2.12.0", "PYSEC-2099-1", fix_versions=("2.11.1", "2.12.1", "2.13.0"))
    assert audit.advice(finding).startswith("upgrade to 2.12.1 (requirements-rasa.txt")
    assert audit.advice(audit.Finding("app", "x", "1.0", "X-1")).startswith("no fixed release")


def test_report_that_is_not_pip_audit_json(tmp_path, capsys):
    (tmp_path / "report.json").write_text('{"vulnerabilities": []}')
    status, _, err = run(capsys, "--report", f"rasa={tmp_path / 'report.json'}", "--exceptions", str(audit.EXCEPTIONS))
    assert status == 2 and "not a pip-audit JSON report" in err and "Traceback" not in err
