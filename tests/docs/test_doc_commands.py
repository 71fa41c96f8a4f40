"""Every command in README.md and docs/*.md runs (or, where marked, parses).

Each Markdown file gets a scratch folder that links the repository's top-level entries
(``configs/``, ``benchmarks/``, ``tests/``, ``constraints.txt``, ...) and holds the sample
inputs the docs name (:data:`SAMPLES`); its shell blocks run there in order, one command
line at a time, after the ``doctest`` markers before each block are applied (tiny sizes,
``parse``/``skip`` for what needs GPUs, several machines, a scheduler or the network). The
convention is documented in docs/plugin-authors.md ("Commands in the docs are tested"). A
failure names the file and line of the command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from doc_blocks import Block, MarkerError, read_blocks
from doc_checks import Checker

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Each plugin's README.md and docs/*.md: tested where that plugin is installed (its tox env
#: runs this test for its own docs), skipped elsewhere.
PLUGIN_DOCS = [doc for folder in sorted((ROOT / "plugins").iterdir())
               if folder.is_dir() and not folder.name.startswith("_")
               for doc in (folder / "README.md", *sorted((folder / "docs").glob("*.md")))
               if doc.is_file()]
COMMAND_TIMEOUT = 300  # seconds per command line, on a loaded 2-core machine
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
              "MASTER_PORT", "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")
#: Not linked into the scratch folder (outputs of earlier runs, environments).
UNLINKED = {".git", ".venv", ".tox", "runs", "exported", "latents", "__pycache__"}
HOW_TO_MARK = "(mark what cannot run here: docs/plugin-authors.md, 'Commands in the docs " \
              "are tested')"

#: A tiny autoencoder run: what ``my_run.yaml`` / ``my.yaml`` stand for in the docs.
TINY_RUN = """\
extends: tiny_autoencoder
run: {name: my_run}
data:
  segment_seconds: 0.25
  batch_size: 2
  train: {name: core.synthetic, params: {num_items: 8}}
  val: null
train: {max_steps: 2, log_every: 1, val_every: 0, checkpoint_every: 0, trackers: [jsonl]}
"""
#: Sample inputs every scratch folder holds (documented beside the marker convention).
SAMPLES = ("my_run.yaml", "my.yaml", "path/to/audio/{cat,dog}/*.wav", "speech.wav",
           "song.wav")


def _tone(path: Path, hz: float, seconds: float = 0.6, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)


def make_scratch(folder: Path) -> Path:
    """A scratch folder: the repository's top-level entries linked, plus :data:`SAMPLES`."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name not in UNLINKED:
            (folder / entry.name).symlink_to(entry)
    (folder / "my_run.yaml").write_text(TINY_RUN, encoding="utf-8")
    (folder / "my.yaml").write_text(TINY_RUN.replace("my_run", "my"), encoding="utf-8")
    for label, base in (("cat", 300.0), ("dog", 500.0)):
        for i in range(2):
            _tone(folder / "path/to/audio" / label / f"{label}_{i}.wav", base + 40 * i)
    _tone(folder / "speech.wav", 220.0, seconds=1.0)
    _tone(folder / "song.wav", 330.0, seconds=1.0)
    return folder


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def run_line(text: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", text], cwd=cwd, env=child_env(),
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)


def execute(blocks: list[Block], scratch: Path) -> list[str]:
    """Run/check every shell command of ``blocks`` in ``scratch``; returns what was done
    (``"README.md:52 parse torchrun ..."``) and fails at the first failing command."""
    checker = Checker(scratch)
    done: list[str] = []
    for block in blocks:
        if block.file:
            target = scratch / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text() + "\n", encoding="utf-8")
    for block in blocks:
        if block.is_python:
            _run_python(block, scratch, done)
        if not block.is_shell:
            continue
        for setup in block.setup:
            _run(setup, f"{block.where} (setup)", scratch)
        for command in block.commands():
            where = f"{block.path}:{command.line}"
            rule = block.mode_of(command.text)
            mode = rule.mode if rule else default_mode(command.text)
            if mode == "run":
                _run(command.text, where, scratch)
            elif mode == "parse":
                problem = checker.check_line(command.text)
                if problem:
                    pytest.fail(f"{where}: `{command.text}`: {problem}", pytrace=False)
            done.append(f"{where} {mode} {command.text}")
    return done


def _run_python(block: Block, scratch: Path, done: list[str]) -> None:
    """Execute a Python block marked ``run`` as a script in ``scratch``."""
    rule = block.python_mode()
    if rule is None or rule.mode != "run":
        return
    script = scratch / f"_doc_snippet_{block.line}.py"
    script.write_text(block.text() + "\n", encoding="utf-8")
    _run(f"python {script.name}", block.where, scratch)
    done.append(f"{block.where} run python")


def _run(text: str, where: str, scratch: Path) -> None:
    argv = in_process_argv(text)
    if argv is not None:
        code, output = run_audio_core(argv, scratch)
    else:
        try:
            proc = run_line(text, scratch)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{where}: `{text}` ran past {COMMAND_TIMEOUT} s {HOW_TO_MARK}",
                        pytrace=False)
        code, output = proc.returncode, proc.stdout + proc.stderr
    if code != 0:
        pytest.fail(f"{where}: `{text}` exited {code} {HOW_TO_MARK}:\n"
                    f"{output.strip()[-3000:]}", pytrace=False)


def in_process_argv(text: str) -> list[str] | None:
    """The arguments of a plain ``audio-core ARGS`` line (no shell syntax, no environment
    assignments), which runs in this process to spare an interpreter start per command;
    ``None`` for anything else (run by bash)."""
    import shlex

    if any(char in text for char in "$*?~<>|;&`(){}!\\'\""):
        return None
    words = shlex.split(text)
    return words[1:] if words[:1] == ["audio-core"] else None


def run_audio_core(argv: list[str], cwd: Path) -> tuple[int, str]:
    """``audio-core ARGV`` in this process, in ``cwd``; the working directory, environment
    and process group are restored afterwards. Returns (exit status, output)."""
    import contextlib
    import io
    import traceback

    from audio_core import distributed
    from audio_core.cli import main

    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    output = io.StringIO()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception:
                traceback.print_exc(file=output)
                code = 1
    finally:
        os.chdir(saved_cwd)
        distributed.teardown()
        os.environ.clear()
        os.environ.update(saved_env)
    return code, output.getvalue()


#: Programs not run unless a marker says ``run``: they change the environment, need the
#: network, a scheduler, or run the test suite itself. Their arguments are checked.
PARSE_BY_DEFAULT = ("pip", "pip3", "python -m pip", "python3 -m pip", "python -m venv",
                    "python3 -m venv", "tox", "python -m tox", "python3 -m tox", "pytest",
                    "python -m pytest", "ruff", "srun", "sbatch", ".", "source")


def default_mode(text: str) -> str:
    from doc_blocks import strip_assignments, words_of

    for words in words_of(text):
        head = " ".join(strip_assignments(words))
        if any(head == p or head.startswith(p + " ") for p in PARSE_BY_DEFAULT):
            return "parse"
    return "run"


def _doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.integration
@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_documented_commands_run(doc, tmp_path, deepspeed_ops):
    blocks = read_blocks(doc, ROOT)
    execute(blocks, make_scratch(tmp_path / "scratch"))


def plugin_installed(doc: Path) -> bool:
    """Whether the plugin whose docs ``doc`` is (``plugins/NAME/...``) can be imported."""
    import importlib.util

    name = doc.relative_to(ROOT / "plugins").parts[0]
    return importlib.util.find_spec(f"audio_plugin_{name}") is not None


@pytest.mark.integration
@pytest.mark.parametrize("doc", PLUGIN_DOCS, ids=_doc_id)
def test_plugin_documented_commands_run(doc, tmp_path, deepspeed_ops):
    """A plugin's README.md and docs/*.md, run as the core docs are (in the plugin's tox
    env: ``tox -e NAME``); every Python block in them is marked ``run`` or ``skip``."""
    blocks = read_blocks(doc, ROOT)
    unmarked = [b.where for b in blocks if b.is_python and b.python_mode() is None]
    assert not unmarked, f"Python blocks without a doctest marker: {unmarked} {HOW_TO_MARK}"
    if not plugin_installed(doc):
        pytest.skip(f"{doc.relative_to(ROOT).parts[1]} is not installed here (tox -e "
                    f"{doc.relative_to(ROOT).parts[1]} runs it)")
    execute(blocks, make_scratch(tmp_path / "scratch"))


# -- the test itself ----------------------------------------------------------------------
# Today's docs/cli.md line, before this change (the deepspeed launcher's flag is --module):
OLD_CLI_LINE = "deepspeed --num_gpus 2 -m audio_core train my.yaml deepspeed.zero_stage=3"


def write_doc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_old_deepspeed_line_fails_with_its_file_and_line(tmp_path):
    doc = write_doc(tmp_path, "# CLI\n\n<!-- doctest parse deepspeed (needs GPUs) -->\n"
                              f"```bash\n{OLD_CLI_LINE}   # DeepSpeed launcher\n```\n")
    with pytest.raises(pytest.fail.Exception) as failure:
        execute(read_blocks(doc, tmp_path), make_scratch(tmp_path / "scratch"))
    message = str(failure.value)
    assert message.startswith("doc.md:5: `deepspeed --num_gpus 2 -m audio_core")
    assert "unrecognized arguments: -m" in message


@pytest.mark.parametrize(("line", "problem"), [
    ("deepspeed --num_gpus 2 --module audio_core train my.yaml", None),
    ("deepspeed --num_gpus 2 --module audio_core train --resume", "expected one argument"),
    ("torchrun --nproc_per_node 2 -m audio_core train my.yaml", None),
    ("torchrun --nproc_per_node 2 -m audio_core trian my.yaml", "invalid choice: 'trian'"),
    ("torchrun --nodes 2 -m audio_core train my.yaml", "unrecognized arguments"),
    ("audio-core launch -- deepspeed --num_gpus 8 -m audio_core train my.yaml",
     "unrecognized arguments: -m"),
    ("srun --ntasks-per-node=1 audio-core launch -- torchrun --nnodes $SLURM_NNODES "
     "--nproc_per_node 4 --rdzv_backend c10d --rdzv_endpoint $MASTER_ADDR:29500 "
     "-m audio_core train my.yaml --resume auto", None),
    ("pip install -c constraints.txt -e .", None),
    ("pip install -c constraints.tx -e .", "no such path 'constraints.tx'"),
    ("python3 -m pip install --no-such-flag x", "no such option: --no-such-flag"),
    ("python3 -m tox -e demo", None),
    ("tox -e tests,nope", "no environment 'nope'"),
    ("python benchmarks/cli_startup.py --repeat 10", None),
    ("python benchmarks/cli_startup.py --repeats 10", "unrecognized arguments: --repeats"),
    ("python benchmarks/no_such.py", "no such file"),
    ("frobnicate --all", "no argument check for program 'frobnicate'"),
])
def test_argument_checks(tmp_path, line, problem):
    found = Checker(ROOT).check_line(line)
    if problem is None:
        assert found is None, found
    else:
        assert found is not None and problem in found, found


def test_markers_set_modes_sizes_and_files(tmp_path):
    doc = write_doc(tmp_path, "\n".join([
        "<!-- doctest file conf.yaml -->",
        "```yaml",
        "steps: 2000",
        "```",
        "",
        "<!-- doctest",
        "replace train.max_steps=200 => train.max_steps=2",
        "parse torchrun, deepspeed (needs GPUs)",
        "-->",
        "",
        "<!-- doctest skip audio-core generate (needs a stage-2 model) -->",
        "```bash",
        "audio-core train x train.max_steps=200  # comment",
        "torchrun --nproc_per_node 8 \\",
        "    -m audio_core train x",
        "A=1 audio-core generate e/",
        "```",
    ]))
    conf, bash = read_blocks(doc, tmp_path)
    assert (conf.file, conf.text()) == ("conf.yaml", "steps: 2000")
    commands = bash.commands()
    assert [(c.line, c.text) for c in commands] == [
        (13, "audio-core train x train.max_steps=2"),
        (14, "torchrun --nproc_per_node 8 -m audio_core train x"),
        (16, "A=1 audio-core generate e/")]
    assert [bash.mode_of(c.text) and bash.mode_of(c.text).mode for c in commands] == \
        [None, "parse", "skip"]


def test_a_marker_shown_inside_a_block_is_an_example(tmp_path):
    doc = write_doc(tmp_path, "```text\n<!-- doctest pase -->\n```\n\n```bash\nls\n```\n")
    text_block, bash = read_blocks(doc, tmp_path)
    assert (text_block.rules, bash.rules) == ([], [])


@pytest.mark.parametrize(("text", "message"), [
    ("<!-- doctest pase torchrun -->\n```bash\nls\n```\n",
     "doc.md:1: unknown doctest directive 'pase'"),
    ("<!-- doctest skip pip -->\n```bash\nls\n```\n", "doc.md:1: 'skip' needs a reason"),
    ("<!-- doctest parse -->\n\ntext\n```bash\nls\n```\n",
     "doc.md:1: doctest marker not followed by a fenced block"),
    ("<!-- doctest parse -->\n```yaml\na: 1\n```\n", "only apply to shell and Python blocks"),
    ("<!-- doctest parse -->\n```python\na = 1\n```\n", "a Python block takes one 'run'"),
])
def test_bad_markers_name_their_file_and_line(tmp_path, text, message):
    with pytest.raises(MarkerError, match=message):
        read_blocks(write_doc(tmp_path, text), tmp_path)


def test_a_replacement_that_no_longer_matches_is_an_error(tmp_path):
    doc = write_doc(tmp_path, "<!-- doctest replace steps=9 => steps=1 -->\n```bash\nls\n```\n")
    [block] = read_blocks(doc, tmp_path)
    with pytest.raises(MarkerError, match=r"doc.md:2: replace 'steps=9': not in the block"):
        block.commands()


def test_a_failing_command_names_its_file_and_line(tmp_path):
    doc = write_doc(tmp_path, "# x\n```bash\ntrue\naudio-core config show no_such_preset\n```\n")
    with pytest.raises(pytest.fail.Exception) as failure:
        execute(read_blocks(doc, tmp_path), make_scratch(tmp_path / "scratch"))
    assert str(failure.value).startswith("doc.md:4: `audio-core config show no_such_preset` "
                                         "exited 1")


def test_a_python_block_marked_run_is_executed_after_the_shell_blocks_above(tmp_path):
    doc = write_doc(tmp_path, "\n".join([
        "```bash", "echo 3 > n.txt", "```", "",
        "<!-- doctest run -->", "```python",
        "from pathlib import Path",
        "Path('twice.txt').write_text(str(2 * int(Path('n.txt').read_text())))",
        "```", "",
        "```python", "raise SystemExit('shown only: not run')", "```"]))
    scratch = make_scratch(tmp_path / "scratch")
    done = execute(read_blocks(doc, tmp_path), scratch)
    assert (scratch / "twice.txt").read_text() == "6"
    assert done[-1] == "doc.md:6 run python"  # the fence's line
