"""Each role's interface is written once: meta/argument_specs.yml.

    python tests/role_interfaces.py            check (make lint), one line per mismatch, exit 1 if any
    python tests/role_interfaces.py --write    regenerate the READMEs' variable sections (make docs)

A role's README carries its variable tables between `<!-- BEGIN_ANSIBLE_DOCS -->` and
`<!-- END_ANSIBLE_DOCS -->`, rendered from the spec by aar-doc with .config/aar_doc.md.j2; the rest
of the README is prose and stays hand-written. defaults/main.yml keeps its comments (and the
commented example items of list variables) but must agree with the spec: every variable it sets is
an option of some entry point with the same default, and every option that is not required is set
there. A required option is not: Ansible checks the role's arguments against its variables
including its defaults, so a default would make `required` a claim it never enforces.

Both files are read with Ansible's own loader (what the role gets at run time: YAML 1.1, anchors
and aliases, `!vault`). Run with --role NAME to look at one role.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ansible.parsing.dataloader import DataLoader

ROOT = Path(__file__).resolve().parents[1]
ROLES = ROOT / "roles"
TEMPLATE = ROOT / ".config" / "aar_doc.md.j2"
AAR_DOC = str(Path(sys.executable).with_name("aar-doc"))
BEGIN, END = "<!-- BEGIN_ANSIBLE_DOCS -->", "<!-- END_ANSIBLE_DOCS -->"


def load(path: Path) -> Any:
    """A YAML file as Ansible reads it (None if empty)."""
    return DataLoader().load_from_file(str(path))


def _shown(value: Any) -> str:
    """A value as JSON, so that 1, 1.0, true and "1" differ as they do to a task."""
    return json.dumps(value, sort_keys=True, default=str)


def interface_mismatches(role: Path) -> list[str]:
    """Where defaults/main.yml and meta/argument_specs.yml disagree, one sentence each."""
    defaults_file, specs_file = role / "defaults" / "main.yml", role / "meta" / "argument_specs.yml"
    defaults = load(defaults_file) if defaults_file.is_file() else {}
    defaults = defaults or {}
    if not specs_file.is_file():
        return [f"{role.name}: no meta/argument_specs.yml"]
    entry_points = (load(specs_file) or {}).get("argument_specs") or {}
    problems, declared = [], set()
    for entry_point, spec in entry_points.items():
        for name, option in ((spec or {}).get("options") or {}).items():
            declared.add(name)
            where = f"{role.name}: {name} (entry point {entry_point})"
            if option.get("required", False):
                if name in defaults:
                    problems.append(
                        f"{where} is required in meta/argument_specs.yml, but defaults/main.yml sets it "
                        f"to {_shown(defaults[name])}, so Ansible never enforces it"
                    )
            elif name not in defaults:
                problems.append(f"{where} is in meta/argument_specs.yml but not in defaults/main.yml")
            elif _shown(option.get("default")) != _shown(defaults[name]):
                problems.append(
                    f"{where}: defaults/main.yml has {_shown(defaults[name])}, meta/argument_specs.yml "
                    f"has {_shown(option.get('default'))}"
                )
    problems += [
        f"{role.name}: {name} is in defaults/main.yml but in no entry point of meta/argument_specs.yml"
        for name in defaults
        if name not in declared
    ]
    return problems


def _failure(proc: subprocess.CompletedProcess[str]) -> str:
    """The last line aar-doc printed (its error, after the traceback)."""
    lines = [line.strip(" │") for line in (proc.stdout + proc.stderr).splitlines() if line.strip(" │╰─╯")]
    return lines[-1] if lines else f"exit status {proc.returncode}"


def render_readme(role: Path, readme: Path) -> subprocess.CompletedProcess[str]:
    """Regenerate `readme`'s variable section from `role`'s spec, in place, with aar-doc."""
    cmd = [AAR_DOC, "--output-template", str(TEMPLATE), "--output-file", str(readme.resolve()), str(role)]
    return subprocess.run([*cmd, "markdown"], capture_output=True, text=True, timeout=120)


def readme_drift(role: Path) -> list[str]:
    """How the README's generated section differs from what the spec renders (empty if it does not)."""
    readme = role / "README.md"
    if not readme.is_file():
        return [f"{role.name}: no README.md"]
    text = readme.read_text(encoding="utf-8")
    if f"\n{BEGIN}\n" not in f"\n{text}" or f"\n{END}\n" not in text:
        return [f"{role.name}: README.md has no {BEGIN} ... {END} section for the variable tables"]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "README.md"
        shutil.copyfile(readme, copy)
        proc = render_readme(role, copy)
        if proc.returncode != 0:
            return [f"{role.name}: aar-doc failed: {_failure(proc)}"]
        rendered = copy.read_text(encoding="utf-8")
    if rendered == text:
        return []
    diff = difflib.unified_diff(
        text.splitlines(), rendered.splitlines(), "README.md", "rendered from the spec", n=0, lineterm=""
    )
    first = next((line for line in list(diff)[2:] if not line.startswith("@@")), "")
    return [
        f"{role.name}: README.md's variable tables are not what meta/argument_specs.yml renders "
        f"(run `make docs`); first difference: {first}"
    ]


def roles(names: list[str] | None = None) -> list[Path]:
    """The roles (all of them, or those named)."""
    found = sorted(path.parent.parent for path in ROLES.glob("*/meta/argument_specs.yml"))
    if not names:
        return found
    unknown = set(names) - {role.name for role in found}
    if unknown:
        raise SystemExit(f"no such role: {', '.join(sorted(unknown))}")
    return [role for role in found if role.name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the READMEs' variable sections")
    parser.add_argument("--role", action="append", help="only this role (repeatable)")
    args = parser.parse_args(argv)
    selected = roles(args.role)
    if args.write:
        failed = 0
        for role in selected:
            proc = render_readme(role, role / "README.md")
            if proc.returncode != 0:
                failed += 1
                print(f"{role.name}: aar-doc failed: {_failure(proc)}")
        return 1 if failed else 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        drift = [line for lines in pool.map(readme_drift, selected) for line in lines]
    problems = [line for role in selected for line in interface_mismatches(role)] + drift
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} mismatch(es) with the roles' meta/argument_specs.yml")
        return 1
    print(f"{len(selected)} roles: defaults/main.yml and README.md agree with meta/argument_specs.yml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
