"""Error messages name the file, the line or row and the key, and never quote the content of
a file that is not audio-core's own (a YAML file that fails to parse, a caption list, a
manifest, a token header, a transformers config.json): a secret on a bad line stays out of
the terminal and the logs."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from audio_core.cli import main
from audio_core.errors import shown, yaml_problem

SECRET = "sk-SECRET-4f9a1c"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("audio-core: error: "), err
    assert SECRET not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("text, where, problem", [
    (f'model:\n  name: x\napi_key: "{SECRET}\n', "line 4, column 1",
     "found unexpected end of stream"),
    (f"run:\n  name: x\ntoken: {SECRET}: nope\n", "line 3, column 24",
     "mapping values are not allowed"),
    (f"x: !!python/object/apply:os.system ['echo {SECRET}']\n", "line 1, column 4",
     "!!python/ tag"),
    (f"a: [1, 2\nb: {SECRET}\n", "line 2, column 2", ""),
])
def test_a_yaml_file_that_does_not_parse_is_named_not_quoted(tmp_path, capsys, text, where,
                                                            problem):
    path = tmp_path / "override.yaml"
    path.write_text(text)
    assert main(["config", "show", str(path)]) == 1
    err = _one_line_error(capsys)
    assert f"{path}' is not valid YAML at {where}" in err and problem in err, err


def test_a_yaml_override_that_does_not_parse_is_one_line(capsys):
    assert main(["config", "show", "tiny_autoencoder", f"run.name='{SECRET}"]) == 1
    assert "not valid YAML at line 1" in _one_line_error(capsys)


def test_yaml_problem_keeps_no_quoted_text():
    import yaml

    with pytest.raises(yaml.YAMLError) as info:
        yaml.safe_load(f"key: '{SECRET}\n  - x: [")
    assert SECRET not in yaml_problem(info.value)
    assert "\n" not in yaml_problem(info.value)


def test_shown_gives_kinds_not_strings():
    assert shown(SECRET) == f"a string of {len(SECRET)} characters"
    assert (shown(3), shown(2.5), shown(True), shown(None)) == ("3", "2.5", "True", "None")
    assert shown([SECRET]) == "a list of 1 items" and shown({"k": SECRET}) == \
        "an object with 1 keys"


def test_a_bad_caption_row_is_named_not_quoted(tmp_path):
    from audio_core.data.base import DatasetError
    from audio_core.data.captioned import read_captions

    path = tmp_path / "captions.jsonl"
    path.write_text(json.dumps({"path": "a.wav", "text": "x"}) + "\n" + json.dumps(
        [SECRET]) + "\n")
    with pytest.raises(DatasetError) as info:
        read_captions(path)
    assert f"{path}:2: expected a JSON object, got a list of 1 items" == str(info.value)


@pytest.mark.parametrize("row, expected", [
    ([SECRET], "expected a JSON object, got a list of 1 items"),
    ({"path": [SECRET], "duration": 1, "sample_rate": 8000},
     "'path' must be a non-empty string, got a list of 1 items"),
    ({"path": "a.wav", "duration": SECRET, "sample_rate": 8000},
     f"'duration' must be a number, got a string of {len(SECRET)} characters"),
    ({"path": "a.wav", "duration": 1, "sample_rate": 8000, "text": {"k": SECRET}},
     "'text' must be a string, got an object with 1 keys"),
    ({"path": "a.wav", "duration": 1, "sample_rate": 8000, "label": [SECRET]},
     "'label' must be a class name or an int, got a list of 1 items"),
])
def test_a_bad_manifest_row_is_named_not_quoted(tmp_path, row, expected):
    from audio_core.data.manifest import ManifestError, read_manifest

    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path))
    assert str(info.value) == f"{path}:1: {expected}"


def test_a_token_header_field_is_named_not_quoted():
    from audio_core.inference.tokens import TokenHeaderError, _int

    with pytest.raises(TokenHeaderError) as info:
        _int({"sample_rate": SECRET}, "sample_rate", 1)
    assert SECRET not in str(info.value) and "'sample_rate' must be an integer, got str" in \
        str(info.value)


def test_an_imported_config_value_is_named_not_quoted(tmp_path):
    from audio_core.engine.imports import ModelImportError, check_choice

    with pytest.raises(ModelImportError) as info:
        check_choice({"model_type": SECRET}, "model_type", ("encodec",), tmp_path / "c.json")
    assert str(info.value).startswith(f"{tmp_path / 'c.json'}: model_type = a string of ")
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("value", [-3, 0, True, 2.5, "secret-string", None, [4]])
def test_an_imported_integer_field_must_be_positive(tmp_path, value):
    from audio_core.engine.imports import ModelImportError, check_fields, positive_int_list

    file = tmp_path / "config.json"
    with pytest.raises(ModelImportError) as err:
        check_fields({"sliding_window": value}, file, positive_ints=("sliding_window",))
    assert str(err.value).startswith(f"{file}: sliding_window = ")
    assert "must be a positive integer" in str(err.value) and "secret" not in str(err.value)
    with pytest.raises(ModelImportError, match="ratios must be a non-empty list"):
        positive_int_list({"ratios": [2, value]}, "ratios", file)
    check_fields({"sliding_window": 5}, file, required=("sliding_window",),
                 positive_ints=("sliding_window", "absent"))  # absent fields keep defaults
    with pytest.raises(ModelImportError, match=r"missing field\(s\) hidden_size"):
        check_fields({}, file, required=("hidden_size",))


def test_a_caption_file_with_a_bad_audio_file_keeps_to_names(tmp_path):
    """The rows are named by number: duplicate paths are reported without the path text."""
    from audio_core.data.base import DatasetError
    from audio_core.data.captioned import read_captions

    sf.write(tmp_path / f"{SECRET}.wav", [0.0] * 80, 8000)
    (tmp_path / "c.csv").write_text(f"path,text\n{SECRET}.wav,a\n./{SECRET}.wav,b\n")
    with pytest.raises(DatasetError) as info:
        read_captions(tmp_path / "c.csv")
    assert "entries 1 and 2 caption the same audio file ('path')" in str(info.value)
    assert SECRET not in str(info.value)
