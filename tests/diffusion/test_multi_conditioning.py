"""Several named conditioners (``model.conditioners``): the timing conditioner, token
concatenation and the joint guidance drop, config parsing and its errors, the single
``model.conditioner`` shorthand (old configs and exports), ``generate --cond`` and
``conditioning={...}``, and datasets' ``seconds_start``/``seconds_total``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import audio_core
from audio_core.cli import main
from audio_core.components.conditioners import ByteTextEncoder, ClassEmbedding, TimingConditioner
from audio_core.config import load_config
from audio_core.engine.export import save_export
from audio_core.errors import ConfigError
from audio_core.models.build import build_model
from audio_core.models.conditioning import ConditionerSet, ConditioningError
from audio_core.models.latent_diffusion import GenerationError
from audio_core.storage.weights_check import fingerprint, model_section

CLASSES = ["dog", "rain"]
TIMING = {"seconds_start": torch.tensor([0.0, 2.0]), "seconds_total": torch.tensor([4.0, 9.0])}


def config(conditioners=None, single=None, **data):
    model = {"denoiser": {"name": "core.conv_denoiser",
                          "params": {"hidden": 8, "blocks": 1, "cross_attention": True}},
             "objective": {"name": "core.rectified_flow"}, "sampler": {"name": "core.euler"},
             "params": {"steps": 2}}
    if conditioners is not None:
        model["conditioners"] = conditioners
    if single is not None:
        model["conditioner"] = single
    return {"run": {"seed": 0},
            "data": {"sample_rate": 8000, "channels": 1, "segment_seconds": 0.01, **data},
            "model": model, "task": {"name": "core.diffusion"}}


TEXT = {"name": "core.byte_text", "params": {"dim": 8, "heads": 2, "max_tokens": 16}}
LABEL = {"name": "core.class_embedding", "params": {"classes": CLASSES, "dim": 8}}
TIME = {"name": "core.timing", "params": {"dim": 8, "max_seconds": 20}}
ALL = {"text": TEXT, "label": LABEL, "timing": TIME}


# -- the timing conditioner -------------------------------------------------------------
def test_timing_gives_two_tokens_that_follow_the_values():
    torch.manual_seed(0)
    timing = TimingConditioner(dim=8, max_seconds=20)
    out = timing(TIMING)
    assert out.embeddings.shape == (2, 2, 8) and out.mask.shape == (2, 2)
    assert bool(out.mask.all()) and timing.input_key == ("seconds_start", "seconds_total")
    later = timing({"seconds_start": [0.0, 2.0], "seconds_total": [4.0, 10.0]})
    torch.testing.assert_close(later.embeddings[0], out.embeddings[0])  # same values
    torch.testing.assert_close(later.embeddings[1, 0], out.embeddings[1, 0])  # same start
    assert not torch.allclose(later.embeddings[1, 1], out.embeddings[1, 1])  # total differs
    clamped = timing({"seconds_start": [0.0, 0.0], "seconds_total": [20.0, 500.0]})
    torch.testing.assert_close(clamped.embeddings[0], clamped.embeddings[1])  # max_seconds
    null = timing.null(3)
    assert null.embeddings.shape == (3, 1, 8) and bool(null.mask.all())
    unknown = timing({"seconds_start": [0.0, 1.0], "seconds_total": [float("nan"), 4.0]})
    assert torch.equal(unknown.embeddings[0], timing.null_embedding.expand(2, 8))
    torch.testing.assert_close(unknown.embeddings[1], timing(
        {"seconds_start": [1.0], "seconds_total": [4.0]}).embeddings[0])
    out.embeddings.sum().backward()
    assert timing.frequencies.grad is not None and timing.frequencies.grad.abs().sum() > 0
    # every call reaches the null embedding (a zero gradient without unknown examples)
    assert timing.null_embedding.grad is not None


def test_timing_values_parse_and_errors_name_the_keys():
    timing = TimingConditioner(dim=4)
    both = {"seconds_start": 2.0, "seconds_total": 10.0}
    assert timing.parse_value("seconds_start=2,seconds_total=10") == both
    assert timing.parse_value("seconds_total=10, seconds_start=2") == both
    assert timing.parse_value("10") == {"seconds_start": 0.0, "seconds_total": 10.0}
    assert timing.parse_value(10) == timing.parse_value({"seconds_total": 10})
    with pytest.raises(ValueError, match="seconds_start=S,seconds_total=T"):
        timing.parse_value("ten")
    with pytest.raises(ValueError, match=r"seconds_total required\), got \['seconds_start'\]"):
        timing.parse_value({"seconds_start": 1})
    with pytest.raises(ValueError, match="finite seconds >= 0"):
        timing.parse_value(-1)
    with pytest.raises(ValueError, match="keys seconds_start, seconds_total"):
        timing({"seconds_total": [1.0]})
    with pytest.raises(ValueError, match="max_seconds"):
        TimingConditioner(max_seconds=0)


# -- several conditioners as one ------------------------------------------------------------
def conditioner_set(dim_label: int = 8) -> ConditionerSet:
    torch.manual_seed(0)
    modules = {"text": ByteTextEncoder(dim=8, heads=2), "label": ClassEmbedding(classes=CLASSES,
                                                                                dim=dim_label),
               "timing": TimingConditioner(dim=8)}
    return ConditionerSet(modules, {n: ((n,) if n != "timing" else TimingConditioner.input_key)
                                    for n in modules})


def test_tokens_are_concatenated_with_their_masks():
    conditioners = conditioner_set().modules
    both = ConditionerSet(conditioners, {"text": ("text",), "label": ("label",),
                                         "timing": ("seconds_start", "seconds_total")})
    cond = both({"text": ["hi", "hello"], "label": torch.tensor([0, 1]), "timing": TIMING}, 2)
    assert cond.embeddings.shape == (2, 5 + 1 + 2, 8)
    assert cond.mask.tolist() == [[True, True, False, False, False, True, True, True],
                                  [True] * 8]
    label = conditioners["label"](torch.tensor([0, 1])).embeddings
    torch.testing.assert_close(cond.embeddings[:, 5:6], label)
    torch.testing.assert_close(cond.embeddings[:, 6:], conditioners["timing"](TIMING).embeddings)
    # a conditioner without values is its null embedding; the null is all three nulls
    partial = both({"label": torch.tensor([1, 1])}, 2)
    assert partial.embeddings.shape == (2, 3, 8)
    torch.testing.assert_close(partial.embeddings[:, 0], conditioners["text"].null(2)
                               .embeddings[:, 0])
    null = both.null(2)
    assert null.embeddings.shape == (2, 3, 8) and bool(null.mask.all())
    assert both.dim == 8 and both.reading("label") == "label" and both.reading("x") is None


def test_dims_must_match_and_the_error_names_both():
    with pytest.raises(ConfigError, match="'text' has dim 8 but 'label' has dim 4"):
        conditioner_set(dim_label=4)


def test_guidance_drops_every_condition_of_an_example_together():
    model = build_model(load_config(config(ALL), check_params=True))
    inputs = {"text": ["a dog", "rain"], "label": torch.tensor([0, 1]), "timing": TIMING}
    kept = model.condition(inputs, 2)
    dropped = model.condition(inputs, 2, drop=torch.tensor([True, False]))
    null = model.condition_set.null(2)
    tokens = null.embeddings.shape[1]
    torch.testing.assert_close(dropped.embeddings[0, :tokens], null.embeddings[0])
    assert not dropped.mask[0, tokens:].any()  # padding after the three null tokens
    torch.testing.assert_close(dropped.embeddings[1], kept.embeddings[1])
    assert dropped.mask[1].tolist() == kept.mask[1].tolist()


def test_batch_values_and_a_missing_key_names_dataset_and_key():
    conditioners = conditioner_set()
    batch = {"text": ["x", "y"], "label": torch.tensor([0, 1]), **TIMING}
    got = conditioners.from_batch(batch, "core.folder")
    assert got["text"] == ["x", "y"] and set(got["timing"]) == set(TIMING)
    with pytest.raises(ConditioningError, match=r"conditioner 'timing' \(TimingConditioner\) "
                       r"reads batch key 'seconds_start', but dataset core.synthetic"):
        conditioners.from_batch({"text": ["x"], "label": torch.tensor([0])}, "core.synthetic")


# -- config --------------------------------------------------------------------------------
def test_dict_config_builds_named_conditioners_with_their_keys():
    cfg = load_config(config({**ALL, "genre": {**LABEL, "key": "genre"}}), check_params=True)
    model = build_model(cfg)
    assert model.conditions == {"text": ("text",), "label": ("label",),
                                "timing": ("seconds_start", "seconds_total"),
                                "genre": ("genre",)}
    assert model.condition_keys == ("text", "label", "seconds_start", "seconds_total", "genre")
    assert model.denoiser.cond_dim == 8
    assert {k.split(".")[1] for k in model.state_dict() if k.startswith("conditioners.")} == \
        {"text", "label", "timing", "genre"}
    with pytest.raises(AttributeError, match="has conditioners"):
        _ = model.conditioner


@pytest.mark.parametrize(("conditioners", "single", "match"), [
    ({"text": {**TEXT, "colour": 1}}, None, r"unknown config key 'model\.conditioners\.text"
                                            r"\.colour'"),
    ({"text": {**TEXT, "key": ["a", "b"]}}, None, r"model\.conditioners\.text\.key: "
                                                  r"ByteTextEncoder takes 1 key"),
    ({"timing": {**TIME, "key": "start"}}, None, r"model\.conditioners\.timing\.key: .*2 key"),
    ({"text": {"name": "core.nope"}}, None, r"model\.conditioners\.text\.name"),
    ({"te-xt": TEXT}, None, r"model\.conditioners\.te-xt: a conditioner name must be an "
                            r"identifier"),
    ({"text": TEXT}, LABEL, "model.conditioner .one. or model.conditioners .by name., not both"),
    ({"text": TEXT, "label": {**LABEL, "params": {"classes": CLASSES, "dim": 4}}}, None,
     "'text' has dim 8 but 'label' has dim 4"),
])
def test_config_errors_name_the_key(conditioners, single, match):
    with pytest.raises(ConfigError, match=match):
        build_model(load_config(config(conditioners, single), check_params=True))


def test_a_model_without_conditioners_refuses_them_and_an_empty_dict_is_unset():
    with pytest.raises(ConfigError, match=r"model\.conditioners is set but model "
                       r"core\.autoencoder .*does not use it"):
        load_config("tiny_autoencoder", ["model.conditioners={text: {name: core.byte_text}}"],
                    check_params=True)
    run = config({})
    run["model"]["denoiser"]["params"]["cross_attention"] = False
    model = build_model(load_config(run, check_params=True))
    assert model.conditions == {} and model.condition(None, 2) is None
    assert model.conditioner is None and model.denoiser.cond_dim == 0


def test_overrides_edit_one_entry_and_a_new_name_drops_the_old_params():
    cfg = load_config(config(ALL), ["model.conditioners.label.params.dim=8",
                                    "model.conditioners.text.name=core.unconditional",
                                    "model.conditioners.text.params.dim=8"])
    assert cfg.model.conditioners["text"].params == {"dim": 8}
    assert cfg.model.conditioners["label"].params["classes"] == CLASSES


# -- the single shorthand: old configs and exports -------------------------------------------
def test_single_conditioner_keeps_its_weight_names_and_gets_a_name():
    model = build_model(load_config(config(single=LABEL), check_params=True))
    assert sorted(k for k in model.state_dict() if "condition" in k) == [
        "conditioner.embedding.weight", "conditioner.null_embedding"]
    assert model.conditions == {"label": ("label",)} and model.condition_keys == ("label",)
    assert isinstance(model.conditioner, ClassEmbedding)
    timing = build_model(load_config(config(single=TIME), check_params=True))
    assert timing.conditions == {"timing": ("seconds_start", "seconds_total")}


def write_old_export(folder: Path) -> Path:
    """An export as written before ``model.conditioners`` existed: the config has no such
    key, the weights are ``conditioner.*``, export.json's fingerprint is over that model
    section."""
    cfg = load_config(config(single=LABEL), check_params=True)
    torch.manual_seed(0)
    out = save_export(build_model(cfg), cfg, folder / "old")
    text = yaml.safe_load((out / "config.yaml").read_text())
    del text["model"]["conditioners"]
    (out / "config.yaml").write_text(yaml.safe_dump(text))
    section = model_section(text)
    assert "conditioners" not in section["model"]
    info = json.loads((out / "export.json").read_text())
    info.update(config_fingerprint=fingerprint(section), model_config=section)
    (out / "export.json").write_text(json.dumps(info))
    return out


def test_an_export_with_the_old_layout_loads_and_generates(tmp_path):
    out = write_old_export(tmp_path)
    model = audio_core.load(out)
    assert model.conditions == {"label": ("label",)}
    audio = model.generate("rain", num_samples=2, seconds=0.01, seed=3)
    assert audio.shape == (2, 1, 80)
    torch.testing.assert_close(audio, model.generate({"label": "rain"}, num_samples=2,
                                                     seconds=0.01, seed=3))
    wav = tmp_path / "x.wav"
    assert main(["generate", str(out), "--class", "1", "-o", str(wav)]) == 0
    assert main(["generate", str(out), "--cond", "label=dog", "--overwrite",
                 "-o", str(wav)]) == 0


# -- generate: CLI and Python API -------------------------------------------------------------
@pytest.fixture
def export(tmp_path) -> Path:
    cfg = load_config(config(ALL), check_params=True)
    torch.manual_seed(0)
    model = build_model(cfg)
    torch.nn.init.normal_(model.denoiser.out.weight)  # a zero output layer says nothing
    return save_export(model, cfg, tmp_path / "export")


def test_generate_cond_flags_reach_each_conditioner(export, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    argv = ["generate", str(export), "--cond", "text=a dog barks", "--cond", "label=rain",
            "--cond", "timing=seconds_start=0,seconds_total=2", "--seed", "4", "-o", str(wav)]
    assert main(argv) == 0
    settings = json.loads(capsys.readouterr().out)
    assert settings["cond"] == {"text": "a dog barks", "label": "rain",
                                "timing": "seconds_start=0,seconds_total=2"}
    model = audio_core.load(export)
    same = model.generate({"text": "a dog barks", "label": 1, "timing": 2.0}, seed=4)
    np.testing.assert_allclose(sf.read(wav, dtype="float32")[0], same[0, 0].clamp(-1, 1).numpy(),
                               atol=1e-4)
    flags = tmp_path / "b.wav"  # --text/--class map to the conditioners reading text/label
    assert main(["generate", str(export), "--text", "a dog barks", "--class", "rain", "--cond",
                 "timing=2", "--seed", "4", "-o", str(flags)]) == 0
    np.testing.assert_array_equal(sf.read(flags)[0], sf.read(wav)[0])
    other = model.generate({"text": "a dog barks", "label": 1, "timing": 9.0}, seed=4)
    assert not torch.allclose(other, same)  # the timing value changes the audio


@pytest.mark.parametrize(("extra", "match"), [
    (["--cond", "mood=happy"], r"--cond mood=happy: unknown conditioner 'mood'; this "
                               r"model's conditioners: text \(text\), label \(label\), "
                               r"timing \(seconds_start/seconds_total\)"),
    (["--cond", "label"], r"--cond label: not NAME=VALUE"),
    (["--cond", "label=dog", "--cond", "label=rain"], "conditioner 'label' given twice"),
    (["--class", "dog", "--cond", "label=rain"], "--class and --cond label=... set the same"),
    (["--cond", "label=cat"], r"unknown class 'cat'"),
    (["--cond", "timing=soon"], r"conditioner 'timing': timing value 'soon'"),
])
def test_generate_cond_errors_are_one_line(export, tmp_path, capsys, extra, match):
    assert main(["generate", str(export), *extra, "-o", str(tmp_path / "x.wav")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "audio-core" in line]
    assert len(err) == 1 and re.search(match, err[0]), err  # (and no traceback)


def test_text_flag_on_a_class_model_names_its_conditioners(tmp_path, capsys):
    out = write_old_export(tmp_path)
    assert main(["generate", str(out), "--text", "hi", "-o", str(tmp_path / "x.wav")]) == 1
    assert "--text does not apply: no conditioner of this model reads 'text' (its " \
           "conditioners: label (label))" in capsys.readouterr().err


def test_python_api_takes_names_and_lists_per_sample(export):
    model = audio_core.load(export)
    two = model.generate({"label": ["dog", "rain"], "text": "x"}, num_samples=2, seed=1)
    dog = model.generate({"label": "dog", "text": "x"}, seed=1)
    torch.testing.assert_close(two[:1], dog)
    with pytest.raises(GenerationError, match="pass conditioning as a mapping"):
        model.generate("a dog")
    with pytest.raises(GenerationError, match="conditioner 'label': got 3 values for 2"):
        model.generate({"label": ["dog"] * 3}, num_samples=2)


# -- datasets ----------------------------------------------------------------------------------
def write_manifest(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i, (label, text) in enumerate([("dog", "a dog barks"), ("rain", "rain on a roof")] * 2):
        path = folder / f"{i}.wav"
        sf.write(path, (0.2 * rng.standard_normal(4000 + 800 * i)).astype(np.float32), 8000)
        rows.append({"path": path.name, "duration": (4000 + 800 * i) / 8000,
                     "sample_rate": 8000, "label": label, "text": text})
    manifest = folder / "clips.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_datasets_give_seconds_start_and_total(tmp_path):
    from audio_core.data.manifest import ManifestDataset
    from audio_core.data.synthetic import SyntheticDataset

    ds = ManifestDataset(write_manifest(tmp_path), sample_rate=8000, segment_seconds=0.1)
    for i in range(len(ds)):
        item = ds[i]
        assert item["seconds_total"] == pytest.approx((4000 + 800 * i) / 8000)
        assert item["seconds_start"] == pytest.approx(item["offset"] / 8000)
        assert 0 <= item["seconds_start"] <= item["seconds_total"] - 0.1
    assert any(ds[i]["seconds_start"] > 0 for i in range(len(ds)))
    synthetic = SyntheticDataset(sample_rate=8000, segment_seconds=0.25, num_items=2)
    assert synthetic[0]["seconds_start"] == 0 and synthetic[0]["seconds_total"] == 0.25


# -- class + text (+ timing) together: training steps, export, generate -----------------------
@pytest.mark.integration
def test_class_and_text_model_trains_and_generates(tmp_path, capsys):
    from audio_core import distributed
    from audio_core.engine.trainer import Trainer

    data = {"batch_size": 2, "segment_seconds": 0.05, "val": None,
            "train": {"name": "core.manifest",
                      "params": {"path": str(write_manifest(tmp_path))}}}
    run = config(ALL, **data)
    run["run"] = {"name": "tc", "output_dir": str(tmp_path), "seed": 0}
    run["task"]["params"] = {"cond_dropout": 0.5}
    run["train"] = {"max_steps": 2, "log_every": 1, "val_every": 0, "checkpoint_every": 2,
                    "trackers": ["jsonl"]}
    try:
        trainer = Trainer(load_config(run, check_params=True))
        trainer.fit()
    finally:
        distributed.teardown()
    records = [json.loads(line) for line in (tmp_path / "tc" / "metrics.jsonl").open()]
    losses = [r["metrics"]["loss/total"] for r in records if "loss/total" in r["metrics"]]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert main(["export", str(tmp_path / "tc"), str(tmp_path / "tc_export")]) == 0
    wav = tmp_path / "tc.wav"
    assert main(["generate", str(tmp_path / "tc_export"), "--text", "a dog barks", "--class",
                 "dog", "--cond", "timing=0.5", "-o", str(wav)]) == 0
    assert sf.read(wav)[0].shape == (round(0.05 * 8000),)


@pytest.mark.integration
def test_training_on_a_dataset_without_a_key_names_dataset_and_key(tmp_path):
    from audio_core import distributed
    from audio_core.engine.trainer import Trainer

    run = config({"text": TEXT, "timing": TIME}, batch_size=2, val=None,
                 train={"name": "core.synthetic", "params": {"num_items": 4}})
    run["run"] = {"name": "no_text", "output_dir": str(tmp_path), "seed": 0}
    run["train"] = {"max_steps": 1, "val_every": 0, "checkpoint_every": 0,
                    "trackers": ["jsonl"]}
    try:
        with pytest.raises(ConditioningError, match=r"conditioner 'text' \(ByteTextEncoder\) "
                           r"reads batch key 'text', but dataset core.synthetic does not "
                           r"supply it .*model.conditioners.text.key"):
            Trainer(load_config(run, check_params=True)).fit()
    finally:
        distributed.teardown()


def test_eval_maps_text_and_class_to_their_conditioners(export, tmp_path, capsys):
    reference = tmp_path / "reference"
    reference.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(reference / f"{i}.wav", (0.1 * rng.standard_normal(4000)).astype(np.float32),
                 8000)
    out = tmp_path / "eval"
    assert main(["eval", str(export), str(reference), "--out", str(out), "--text", "rain",
                 "--class", "rain", "--num-samples", "2", "--seconds", "0.5"]) == 0
    assert len(list((out / "generated").glob("*.wav"))) == 2
    capsys.readouterr()
    assert main(["eval", str(export), str(reference), "--out", str(tmp_path / "e2"),
                 "--class", "cat", "--num-samples", "2", "--seconds", "0.5"]) == 1
    assert "conditioner 'label': unknown class 'cat'" in capsys.readouterr().err
