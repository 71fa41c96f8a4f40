"""The audio-core command: listing, config commands, help, and that listing stays light."""

import json
import subprocess
import sys

import pytest

from audio_core.cli import build_parser, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audio_core", *args],
                          capture_output=True, text=True, timeout=120)


def test_plugins_listing_does_not_import_torch():
    code = ("import sys, io, contextlib\n"
            "from audio_core.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    assert main(['plugins', '--json']) == 0\n"
            "    assert main(['components']) == 0\n"
            "heavy = ('torch', 'numpy', 'librosa', 'soundfile')\n"
            "heavy = sorted(m for m in heavy if m in sys.modules)\n"
            "print(heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_plugins_json_lists_core_and_the_example_plugin():
    proc = run_cli("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    plugins = {p["name"]: p for p in json.loads(proc.stdout)}
    core = plugins["core"]
    assert core["distribution"] == "audio-core" and core["status"] == "loaded"
    assert "core.synthetic" in core["components"]
    example = plugins["example"]
    assert example["distribution"] == "audio-plugin-example"
    assert example["status"] == "loaded"
    assert "audio_core_register_encoders" in example["hooks"]
    assert "example.frame_encoder" in example["components"]


def test_components_filters_by_kind(capsys):
    assert main(["components", "--kind", "encoder", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["kind"] for r in rows} == {"encoder"}
    assert "example.frame_encoder" in {r["name"] for r in rows}


def test_blocked_plugin_is_absent_from_the_cli():
    env_code = ("import os, json, io, contextlib\n"
                "os.environ['AUDIO_CORE_BLOCK_PLUGINS'] = 'audio-plugin-example'\n"
                "from audio_core.cli import main\n"
                "out = io.StringIO()\n"
                "with contextlib.redirect_stdout(out):\n"
                "    main(['components', '--json'])\n"
                "print(sorted(r['name'] for r in json.loads(out.getvalue())))\n")
    proc = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "example.frame_encoder" not in proc.stdout


def test_config_show_prints_the_resolved_config(capsys):
    overrides = ["train.max_steps=5", "run.name=x${train.max_steps}"]
    assert main(["config", "show", "demo", *overrides]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 5" in out and "name: x5" in out


def test_config_validate_checks_components_and_params(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("extends: demo\nmodel:\n  encoder:\n    name: example.frame_encoder\n"
                    "    params: {dim: 8, hop_length: 32}\n"
                    "  decoder: {name: core.conv, params: {dim: 8, width: 8, ratios: [2, 4, 4]}}\n"
                    "  losses: [{name: core.l1}]\n")
    assert main(["config", "validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["config", "validate", str(good), "model.encoder.name=example.frame_encodr"]) == 1
    err = capsys.readouterr().err
    assert "unknown encoder 'example.frame_encodr' at model.encoder.name" in err
    assert "did you mean 'example.frame_encoder'" in err
    assert main(["config", "validate", str(good), "model.encoder.params.dimm=3"]) == 1
    assert "model.encoder.params.dimm" in capsys.readouterr().err
    # every slot the model and task build is checked: required ones, and unused ones
    assert main(["config", "validate", str(good), "model.losses=[]"]) == 1
    assert "model.losses is required by model core.autoencoder" in capsys.readouterr().err
    assert main(["config", "validate", str(good), "model.sampler.name=core.euler"]) == 1
    err = capsys.readouterr().err
    assert "model.sampler is set but model core.autoencoder" in err and "does not use" in err
    assert main(["config", "validate", str(good), "model.type=core.autoencodr"]) == 1
    assert "did you mean 'core.autoencoder'" in capsys.readouterr().err


def test_errors_go_to_stderr_with_exit_code_1():
    proc = run_cli("config", "show", "demo", "train.max_stepz=3")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "did you mean 'train.max_steps'" in proc.stderr


def _all_command_paths(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _all_command_paths(sub, (*prefix, name))


@pytest.mark.parametrize("command", [(), *_all_command_paths(build_parser())],
                         ids=lambda c: " ".join(c) or "root")
def test_help_on_every_command(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: audio-core" in capsys.readouterr().out


def test_tables_are_tab_separated_and_whole_when_piped():
    proc = run_cli("components")  # stdout is a pipe, not a terminal
    assert proc.returncode == 0, proc.stderr
    title, header, *rows = proc.stdout.splitlines()
    assert title == "# audio-core components"
    assert header.split("\t") == ["kind", "name", "plugin", "description"]
    cells = [row.split("\t") for row in rows]
    assert all(len(c) == 4 for c in cells)
    encoder = next(c for c in cells if c[1] == "example.frame_encoder")
    assert encoder[0] == "encoder" and encoder[2] == "example"
    assert max(len(c[3]) for c in cells) > 80  # descriptions are not cut to a terminal width
