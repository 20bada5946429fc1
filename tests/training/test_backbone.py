"""The Swin face backbone: local Hugging Face checkpoints only, 49 tokens per 224x224 frame."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from milmer.runtime.check import MilmerInputError
from milmer.training.backbone import (
    load_swin,
    read_swin_config,
    save_tiny_swin,
    swin_from_config,
    swin_token_dim,
    swin_tokens_per_frame,
)


def test_tiny_swin_checkpoint_format_and_tokens(tiny_swin_dir):
    assert sorted(p.name for p in tiny_swin_dir.iterdir()) == ["config.json", "model.safetensors"]
    cfg = read_swin_config(tiny_swin_dir)
    assert (cfg["image_size"], cfg["patch_size"], cfg["window_size"], cfg["embed_dim"]) == (224, 4, 7, 8)
    swin = load_swin(tiny_swin_dir).eval()
    assert swin.config._attn_implementation == "eager"
    assert swin.pooler is None
    assert swin.config.hidden_size == 64 == swin_token_dim(cfg)  # the formula matches HF's hidden_size
    assert swin_tokens_per_frame(swin.config, 224) == 49
    with torch.no_grad():
        tokens = swin(pixel_values=torch.randn(3, 3, 224, 224)).last_hidden_state
    assert tokens.shape == (3, 49, 64)
    # The weights are exactly what the checkpoint holds.
    saved = load_file(str(tiny_swin_dir / "model.safetensors"))
    state = swin.state_dict()
    assert all(torch.equal(state[k], saved[k]) for k in state if k in saved)


def test_save_tiny_swin_is_seeded_and_keeps_global_rng(tmp_path):
    before = torch.get_rng_state()
    a = load_file(str(save_tiny_swin(tmp_path / "a", seed=3) / "model.safetensors"))
    b = load_file(str(save_tiny_swin(tmp_path / "b", seed=3) / "model.safetensors"))
    c = load_file(str(save_tiny_swin(tmp_path / "c", seed=4) / "model.safetensors"))
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_image_classification_checkpoint_loads_its_encoder(tmp_path):
    from transformers import SwinForImageClassification

    path = save_tiny_swin(tmp_path / "cls", classifier_labels=7, seed=5)
    assert json.loads((path / "config.json").read_text())["architectures"] == ["SwinForImageClassification"]
    reference = SwinForImageClassification.from_pretrained(path, local_files_only=True).swin.state_dict()
    encoder = load_swin(path).state_dict()
    assert set(encoder) == {k for k in reference if not k.startswith("pooler")}
    assert all(torch.equal(encoder[k], reference[k]) for k in encoder)


def test_swin_t_geometry_from_config_only():
    from transformers import SwinConfig

    config = SwinConfig()  # Swin-T: embed 96, depths (2, 2, 6, 2), patch 4, window 7
    assert config.hidden_size == 768
    assert swin_tokens_per_frame(config, 224) == 49
    assert swin_tokens_per_frame(config, 192) == 36


def test_swin_from_config_matches_loaded_architecture(tiny_swin_dir):
    built = swin_from_config(read_swin_config(tiny_swin_dir))
    loaded = load_swin(tiny_swin_dir)
    assert built.config._attn_implementation == "eager"
    assert {k: v.shape for k, v in built.state_dict().items()} == {k: v.shape for k, v in loaded.state_dict().items()}


def test_missing_directory_says_to_download(tmp_path):
    with pytest.raises(
        MilmerInputError,
        match=r"'backbone_dir': directory not found: .*nowhere.*download the Swin checkpoint into .*nowhere.*, e\.g\. the "
        r"paper's: hf download MahmoudWSegni/swin-tiny-patch4-window7-224-finetuned-face-emotion-v12 --local-dir ",
    ):
        load_swin(tmp_path / "nowhere")


def test_directory_without_config_json(tmp_path):
    with pytest.raises(MilmerInputError, match=r"file not found: .*config.json'; without config.json it is not a Hugging Face checkpoint; download the Swin checkpoint"):
        load_swin(tmp_path)


def test_not_a_swin_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(MilmerInputError, match=r"'backbone_dir': expected 'swin' \(the model_type of a Swin checkpoint, in .*config.json'\), got 'vit'"):
        load_swin(tmp_path)


def test_missing_weights_file(tiny_swin_dir, tmp_path):
    path = shutil.copytree(tiny_swin_dir, tmp_path / "swin")
    (path / "model.safetensors").unlink()
    with pytest.raises(MilmerInputError, match=r"the checkpoint weights in .* could not be read .*download the Swin checkpoint"):
        load_swin(path)


def test_weights_that_do_not_cover_the_encoder(tiny_swin_dir, tmp_path):
    path = shutil.copytree(tiny_swin_dir, tmp_path / "swin")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "depths": [2, 1, 1, 1]}))
    with pytest.raises(MilmerInputError, match=r"do not fit the Swin encoder \(missing or mismatched: encoder.layers.0.blocks.1"):
        load_swin(path)
    (path / "config.json").write_text(json.dumps({**config, "embed_dim": 16}))
    with pytest.raises(MilmerInputError, match=r"do not fit its config.json"):
        load_swin(path)


def test_mismatched_depths_and_heads(tmp_path):
    with pytest.raises(MilmerInputError, match=r"'depths'/'num_heads': expected the same length, got 2 and 4"):
        save_tiny_swin(tmp_path, depths=(1, 1), num_heads=(1, 1, 1, 1))
