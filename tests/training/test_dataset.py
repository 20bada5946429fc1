from __future__ import annotations

import numpy as np
import pytest
import torch

from milmer.runtime.check import MilmerInputError
from milmer.runtime.face.crop import normalize
from milmer.runtime.spec import CLASS_SCHEMES, EEGSpec, FaceSpec, ICASpec, ModelSpec
from milmer.training.window_cache_build import build_cache
from milmer.training.dataset import Augment, WindowDataset, make_loader
from milmer.training.deap import index_deap

SPEC = ModelSpec(eeg=EEGSpec(ica=ICASpec(enabled=False)))  # ICA is slow and beside the point here


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from milmer.synthetic.make import make_demo_data

    out = tmp_path_factory.mktemp("demo")
    return make_demo_data(
        out, n_subjects=1, n_trials=4, trial_s=3.0, baseline_s=3.0, video_fps=10.0, recording_s=1.0, seed=1
    )


@pytest.fixture(scope="module")
def cached(demo, tmp_path_factory):
    records = index_deap(demo.deap_root).records
    return build_cache(records, SPEC, tmp_path_factory.mktemp("cache"), workers=1, progress=False)


def test_item_shapes_dtypes_and_normalisation(cached):
    ds = WindowDataset(cached, SPEC)
    assert len(ds) == 4  # 4 trials x one 3 s window
    eeg, frames, label = ds[2]
    assert eeg.shape == (32, 384) and eeg.dtype == torch.float32
    assert frames.shape == (10, 3, 224, 224) and frames.dtype == torch.float32
    assert label.dtype == torch.int64 and label.shape == ()
    assert np.array_equal(eeg.numpy(), cached.eeg[2])
    assert np.array_equal(frames.numpy(), normalize(cached.faces[2], SPEC.face.mean, SPEC.face.std))
    # ImageNet statistics by hand for one pixel of frame 4: (x / 255 - mean) / std.
    pixel = cached.faces[2][4, 100, 120].astype(np.float64)
    expected = (pixel / 255 - np.array(SPEC.face.mean)) / np.array(SPEC.face.std)
    assert np.allclose(frames[4, :, 100, 120].numpy(), expected, atol=1e-6)


def test_labels_match_the_demo_ground_truth(cached, demo):
    ds = WindowDataset(cached, SPEC)
    truth = {t.trial: t.label for t in demo.trials}  # DEAP-4 class names by presentation trial
    got = {int(cached.trial[i]): CLASS_SCHEMES["deap4"][int(ds[i][2])] for i in range(len(ds))}
    assert got == truth
    assert sorted(truth.values()) == ["HAHV", "HALV", "LAHV", "LALV"]
    binary = WindowDataset(cached, ModelSpec.for_scheme("deap2-arousal", eeg=SPEC.eeg))
    assert [int(binary[i][2]) for i in range(4)] == [int(a >= 5) for a in cached.ratings[:, 1]]


def test_indices_select_windows(cached):
    ds = WindowDataset(cached, SPEC, indices=[3, 1])
    assert len(ds) == 2
    assert np.array_equal(ds[0][0].numpy(), cached.eeg[3])
    with pytest.raises(MilmerInputError, match=r"'indices': expected values in \[0, 3\], got values from 1 to 4"):
        WindowDataset(cached, SPEC, indices=[1, 4])
    with pytest.raises(MilmerInputError, match=r"'labels': expected a \(4,\) array, got int64 \(3,\)"):
        WindowDataset(cached, SPEC, labels=[0, 1, 2])
    small = ModelSpec(eeg=SPEC.eeg, face=FaceSpec(frame_size=112))
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'spec': expected \(\(32, 384\), \(10, 224, 224, 3\)\) \(the \(EEG, faces\) window shapes the cache holds\), got \(\(32, 384\), \(10, 112, 112, 3\)\); build the cache with this spec\.$"):
        WindowDataset(cached, small)


def test_augmentation_is_off_by_default_and_seeded_when_on(cached):
    clean = WindowDataset(cached, SPEC)
    torch.manual_seed(1)
    first = clean[0]
    torch.manual_seed(2)
    assert all(torch.equal(x, y) for x, y in zip(first, clean[0]))
    flip = WindowDataset(cached, SPEC, augment=Augment(hflip_p=1.0, eeg_noise=0.0))
    assert torch.equal(flip[0][1], clean[0][1].flip(-1)) and torch.equal(flip[0][0], clean[0][0])
    noisy = WindowDataset(cached, SPEC, augment=Augment(hflip_p=0.0, eeg_noise=0.1))
    torch.manual_seed(0)
    a = noisy[0][0]
    torch.manual_seed(0)
    b = noisy[0][0]
    assert torch.equal(a, b)
    ratio = ((a - clean[0][0]).std(dim=-1) / clean[0][0].std(dim=-1)).mean().item()
    assert 0.08 < ratio < 0.12  # noise std is 10 % of each channel's std
    with pytest.raises(MilmerInputError, match=r"'hflip_p': expected a number in \[0, 1\], got 1.5"):
        Augment(hflip_p=1.5)
    with pytest.raises(MilmerInputError, match="'eeg_noise': expected a finite number >= 0, got -0.1"):
        Augment(eeg_noise=-0.1)


def test_loader_batches_and_seeded_order(cached):
    ds = WindowDataset(cached, SPEC)
    eeg, frames, labels = next(iter(make_loader(ds, batch_size=3, shuffle=False)))
    assert eeg.shape == (3, 32, 384) and frames.shape == (3, 10, 3, 224, 224) and labels.shape == (3,)

    numbers = torch.utils.data.TensorDataset(torch.arange(10))

    def order(seed):
        return [int(x) for (batch,) in make_loader(numbers, batch_size=4, shuffle=True, seed=seed) for x in batch]

    assert order(0) == order(0)
    assert order(0) == [3, 7, 5, 2, 0, 8, 1, 6, 9, 4]
    assert order(1) != order(0)
    with pytest.raises(MilmerInputError, match="'batch_size': expected an integer >= 1, got 0"):
        make_loader(ds, batch_size=0, shuffle=False)
    with pytest.raises(MilmerInputError, match="'num_workers': expected an integer >= 0, got -1"):
        make_loader(ds, batch_size=1, shuffle=False, num_workers=-1)


def test_dataset_survives_pickling_for_workers(cached):
    import pickle

    ds = WindowDataset(cached, SPEC)
    ds[0]  # opens a memory map
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[1][1], ds[1][1])
