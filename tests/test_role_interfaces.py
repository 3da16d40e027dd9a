"""Each role's interface is written once, in meta/argument_specs.yml (tests/role_interfaces.py).

The roles' defaults and READMEs agree with their specs; the check finds each kind of mismatch and
says it in one line; options shared between entry points are one YAML node; Ansible reads the
aliased options and enforces `required` now that no default hides it.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("role_interfaces", ROOT / "tests" / "role_interfaces.py")
assert _spec is not None and _spec.loader is not None
role_interfaces = importlib.util.module_from_spec(_spec)
sys.modules["role_interfaces"] = role_interfaces
_spec.loader.exec_module(role_interfaces)
sys.path.insert(0, str(ROOT / "tests"))
from test_roles import play  # noqa: E402  (the roles' own runner: the role against the controller)

ROLES = role_interfaces.roles()


def test_every_role_is_checked():
    on_disk = {path.name for path in (ROOT / "roles").iterdir() if path.is_dir()}
    assert {role.name for role in ROLES} == on_disk


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_defaults_agree_with_the_argument_specs(role):
    assert role_interfaces.interface_mismatches(role) == []


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_the_readme_tables_are_what_the_argument_specs_render(role):
    assert role_interfaces.readme_drift(role) == []


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_an_option_shared_by_entry_points_is_declared_once(role):
    """Re-declaring an option in a second entry point (instead of aliasing the first) is how the
    copies drifted apart: with an alias, PyYAML hands back the same object for both."""
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    first: dict[str, object] = {}
    copies = []
    for entry_point, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            if name in first and option is not first[name]:
                copies.append(f"{entry_point}: {name}")
            first.setdefault(name, option)
    assert copies == []


SPEC = """\
argument_specs:
  main:
    short_description: A made-up role
    options:
      demo_port: &demo_port
        type: int
        default: 80
        description: Its port.
      demo_name:
        type: str
        required: true
        description: Its name.
      demo_mode:
        type: str
        default: fast
        description: How it runs | what it does.
      demo_only_in_spec:
        type: bool
        default: false
        description: Not in the defaults.
  other:
    short_description: Another entry point
    options:
      demo_port: *demo_port
      demo_items:
        type: list
        elements: dict
        default: []
        description: Items.
        options:
          key:
            type: str
            required: true
            description: A key.
"""

DEFAULTS = """\
demo_port: 8080
demo_name: ""
demo_mode: fast
demo_items: []
demo_only_in_defaults: 1
"""


@pytest.fixture
def demo_role(tmp_path):
    role = tmp_path / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(SPEC)
    (role / "meta" / "main.yml").write_text(
        "galaxy_info:\n  role_name: demo\n  author: x\n  description: A made-up role\n  license: MIT\n"
        "  platforms: []\n"
    )
    (role / "defaults" / "main.yml").write_text(DEFAULTS)
    (role / "README.md").write_text(
        "# demo\n\nProse stays.\n\n## Variables\n\n<!-- BEGIN_ANSIBLE_DOCS -->\n| old | table |\n"
        "<!-- END_ANSIBLE_DOCS -->\n\n## Example\n\nMore prose.\n"
    )
    return role


def test_the_check_names_each_mismatch_on_a_line_of_its_own(demo_role):
    assert role_interfaces.interface_mismatches(demo_role) == [
        "demo: demo_port (entry point main): defaults/main.yml has 8080, meta/argument_specs.yml has 80",
        "demo: demo_name (entry point main) is required in meta/argument_specs.yml, but defaults/main.yml "
        'sets it to "", so Ansible never enforces it',
        "demo: demo_only_in_spec (entry point main) is in meta/argument_specs.yml "
        "but not in defaults/main.yml",
        "demo: demo_port (entry point other): defaults/main.yml has 8080, meta/argument_specs.yml has 80",
        "demo: demo_only_in_defaults is in defaults/main.yml "
        "but in no entry point of meta/argument_specs.yml",
    ]


def test_the_check_tells_a_number_from_a_string_or_a_bool(demo_role):
    (demo_role / "defaults" / "main.yml").write_text(
        'demo_port: "80"\ndemo_mode: fast\ndemo_items: []\ndemo_only_in_spec: 0\n'
    )
    assert role_interfaces.interface_mismatches(demo_role) == [
        'demo: demo_port (entry point main): defaults/main.yml has "80", meta/argument_specs.yml has 80',
        "demo: demo_only_in_spec (entry point main): defaults/main.yml has 0, "
        "meta/argument_specs.yml has false",
        'demo: demo_port (entry point other): defaults/main.yml has "80", meta/argument_specs.yml has 80',
    ]


def test_a_stale_table_is_reported_and_make_docs_rewrites_only_the_marked_section(demo_role):
    readme = demo_role / "README.md"
    [drift] = role_interfaces.readme_drift(demo_role)
    assert drift.startswith("demo: README.md's variable tables are not what meta/argument_specs.yml renders")
    assert "make docs" in drift and "| old | table |" in drift

    assert role_interfaces.render_readme(demo_role, readme).returncode == 0
    assert role_interfaces.readme_drift(demo_role) == []
    text = readme.read_text()
    assert text.startswith("# demo\n\nProse stays.\n\n## Variables\n\n<!-- BEGIN_ANSIBLE_DOCS -->\n")
    assert text.endswith("<!-- END_ANSIBLE_DOCS -->\n\n## Example\n\nMore prose.\n")
    assert "| old | table |" not in text
    assert "| `demo_name` | str | *required* | Its name. |" in text
    assert "| `demo_mode` | str | `fast` | How it runs \\| what it does. |" in text  # a | would end the cell
    # The shared option is named in the second entry point, not repeated; the items get their table.
    assert text.count("| `demo_port` |") == 1
    assert "Takes `demo_port` as `main` does." in text
    assert "Keys of each item of `demo_items`:" in text and "| `key` | str | *required* | A key. |" in text

    # Editing the spec makes the README stale again.
    spec = demo_role / "meta" / "argument_specs.yml"
    spec.write_text(spec.read_text().replace("description: Its name.", "description: Its new name."))
    [drift] = role_interfaces.readme_drift(demo_role)
    assert "Its name." in drift


def test_a_readme_without_the_markers_is_reported(demo_role):
    (demo_role / "README.md").write_text("# demo\n\n| a hand-written | table |\n")
    assert role_interfaces.readme_drift(demo_role) == [
        "demo: README.md has no <!-- BEGIN_ANSIBLE_DOCS --> ... <!-- END_ANSIBLE_DOCS --> section for the "
        "variable tables"
    ]


def test_the_command_line_check_exits_1_with_a_line_per_mismatch(demo_role, monkeypatch, capsys):
    roles_dir = demo_role.parent
    shutil.copytree(ROOT / "roles" / "redis", roles_dir / "redis")
    monkeypatch.setattr(role_interfaces, "ROLES", roles_dir)
    assert role_interfaces.main([]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7  # five mismatches, the stale README, the count
    assert all(line.startswith("demo: ") for line in lines[:-1])
    assert lines[-1] == "6 mismatch(es) with the roles' meta/argument_specs.yml"
    assert role_interfaces.main(["--role", "redis"]) == 0
    assert "1 roles: defaults/main.yml and README.md agree" in capsys.readouterr().out


def test_ansible_reads_an_aliased_option_and_validates_it(tmp_path):
    """pgbouncer's `stage` entry point takes pgbouncer_pool_mode as an alias of main's."""
    proc = play(tmp_path, "pgbouncer", "pgbouncer_pool_mode: sometimes", check=True, entry="stage")
    assert proc.returncode != 0
    assert "Validating arguments against arg spec 'stage'" in proc.stdout
    assert "pgbouncer_pool_mode" in proc.stdout and "session, transaction, statement" in proc.stdout
    assert "changed=0" in proc.stdout


@pytest.mark.parametrize(
    ("role", "entry", "variables", "missing"),
    [
        (
            "app_release",
            None,
            "app_release_root: /nonexistent",
            "app_release_archive, app_release_name, app_release_revision",
        ),
        ("app_release", "activate", "app_release_root: /nonexistent", "app_release_name"),
        ("pgbouncer", "admin", "pgbouncer_admin_switch: false", "pgbouncer_admin_commands"),
        (
            "postgres_replica",
            None,
            "postgres_replica_reseed: false",
            "postgres_replica_password, postgres_replica_primary_address, postgres_replica_primary_host",
        ),
        ("sidekiq_metrics", None, "sidekiq_metrics_publish: false", "sidekiq_metrics_farm"),
    ],
)
def test_a_required_option_is_asked_for_before_any_task(tmp_path, role, entry, variables, missing):
    """These were `required` in the spec but "" or [] in defaults/main.yml, which Ansible's check
    counts as given: a play without them ran on into the role's own tasks."""
    proc = play(tmp_path, role, variables, check=True, entry=entry)
    assert proc.returncode != 0
    assert "Validating arguments against arg spec" in proc.stdout
    assert f"missing required arguments: {missing}" in proc.stdout
    assert "changed=0" in proc.stdout
