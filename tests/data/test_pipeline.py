import json

import numpy as np
import pytest

from jaxface.data.pipeline import (
    READ_AHEAD,
    EpochGroups,
    batch_iterator,
    draw_images,
    eval_batches,
    grouped_batches,
)
from jaxface.data.records import read_info
from jaxface.data.synthetic import SynthSettings, generate


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    generate(out, identities=6, per_identity=3, seed=3, settings=SynthSettings(
        image_size=32, uv_size=32, occluder_prob=0.0), batch=6, progress=False,
        val_identities=3)
    return out


@pytest.fixture(scope="module")
def uneven(folder, tmp_path_factory):
    """The same records declared as identities of 5, 1, 4 and 8 images (a prepared photo
    folder keeps every usable image, so identities differ in size)."""
    import shutil

    out = tmp_path_factory.mktemp("uneven")
    for f in folder.iterdir():
        shutil.copy(f, out / f.name)
    info = read_info(out)
    info["splits"]["train"]["group_sizes"] = [5, 1, 4, 8]
    (out / "dataset_info.json").write_text(json.dumps(info))
    return out


def test_batches_are_whole_identity_groups(folder):
    ds = grouped_batches(folder, identities_per_batch=2, images_per_identity=2, seed=11)
    for step in range(7):
        batch = ds[step]
        ids = batch["identity"]
        assert ids.shape == (4,) and ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
        assert batch["index"][0] != batch["index"][1]    # two different images of one face
        assert batch["image"].dtype == np.float32 and batch["image"].max() <= 1.0
        assert batch["image"].shape == (4, 32, 32, 3) and batch["mask"].shape == (4, 32, 32, 1)
    # One epoch (3 batches of 2 of the 6 identities) sees every identity once.
    seen = np.concatenate([ds[s]["identity"][::2] for s in range(3)])
    assert sorted(seen) == list(range(6))
    other = np.concatenate([grouped_batches(folder, 2, 2, seed=12)[s]["identity"][::2]
                            for s in range(3)])
    assert not np.array_equal(seen, other)  # the seed decides the order


def test_images_are_redrawn_each_epoch_and_all_are_used(rng):
    """DECA's sampling: K images of an identity afresh each epoch, distinct within the epoch,
    and every one of its n images drawn within ceil(n / K) epochs."""
    seed, identity = int(rng.integers(2**31)), int(rng.integers(1000))
    n, k = int(rng.integers(2, 12)), 0
    k = int(rng.integers(1, n + 1))
    cycle = -(-n // k)
    drawn = [draw_images(seed, e, identity, n, k) for e in range(2 * cycle)]
    for d in drawn:
        assert len(d) == k and len(set(d.tolist())) == k and d.max() < n
    assert set(np.concatenate(drawn[:cycle]).tolist()) == set(range(n))
    assert set(np.concatenate(drawn[cycle:]).tolist()) == set(range(n))
    again = [draw_images(seed, e, identity, n, k) for e in range(2 * cycle)]
    assert all(np.array_equal(a, b) for a, b in zip(drawn, again, strict=True))
    if n > k:  # more images than one draw: the draws differ between epochs
        assert any(not np.array_equal(drawn[0], d) for d in drawn[1:])
    with pytest.raises(ValueError, match="fewer than"):
        draw_images(seed, 0, identity, 2, 3)


def test_uneven_identities_cover_every_image_over_epochs(uneven):
    """Identities with fewer than K images are left out; the others contribute every one of
    their images over the epochs, and a resumed stream draws the same groups."""
    groups = EpochGroups(np.array([5, 1, 4, 8]), k=2, seed=4)
    assert sorted(groups.identities.tolist()) == [0, 2, 3]
    used: dict[int, set] = {0: set(), 2: set(), 3: set()}
    for g in range(3 * 4):                # 4 epochs: the 8-image identity needs 4
        identity, images = groups[g]
        used[identity] |= set(images.tolist())
    assert used == {0: set(range(5)), 2: set(range(4)), 3: set(range(8))}
    ds = grouped_batches(uneven, 1, 2, seed=4)
    offsets = {0: 0, 2: 6, 3: 10}
    for step in range(6):
        identity, images = groups[step]
        np.testing.assert_array_equal(ds[step]["index"], [(offsets[identity] + i) % 3
                                                          for i in images])


def test_resume_at_a_step_continues_identically(folder):
    ds = grouped_batches(folder, identities_per_batch=2, images_per_identity=2, seed=5)
    first = batch_iterator(ds)
    reference = [next(first) for _ in range(8)]
    resumed = batch_iterator(grouped_batches(folder, 2, 2, seed=5), 5)
    for step in (5, 6, 7):
        got = next(resumed)
        for key in ("image", "identity", "landmarks", "index"):
            np.testing.assert_array_equal(got[key], reference[step][key])


def test_several_folders_mix_by_weight(folder, tmp_path):
    """Two folders (as VGGFace2 + BUPT) mixed group by group with weights 3:1."""
    other = tmp_path / "other"
    generate(other, identities=4, per_identity=2, seed=9, settings=SynthSettings(
        image_size=32, uv_size=32, occluder_prob=0.0), batch=8, progress=False)

    def fingerprints(directory, k):
        ds = eval_batches(directory, 1, k, split="train")
        return {ds[i]["image"][j].tobytes() for i in range(len(ds)) for j in range(k)}

    first, second = fingerprints(folder, 3), fingerprints(other, 2)
    ds = grouped_batches(f"{folder},{other}", 4, 1, seed=0, weights=(0.75, 0.25))
    counts = [0, 0]
    for step in range(8):
        for image in ds[step]["image"]:
            key = image.tobytes()
            assert (key in first) != (key in second)
            counts[key in second] += 1
    assert counts == [24, 8]
    with pytest.raises(ValueError, match="mix_weights has 1 values for 2"):
        grouped_batches([folder, other], 2, 1, seed=0, weights=(1.0,))


def test_worker_processes_give_the_same_batches(folder):
    ds = grouped_batches(folder, identities_per_batch=2, images_per_identity=3, seed=5)
    it = batch_iterator(ds, 1, workers=2)
    got = [np.array(next(it)["identity"]) for _ in range(3)]
    del it
    assert all(np.array_equal(g, ds[1 + i]["identity"]) for i, g in enumerate(got))


def test_host_shards_are_disjoint_and_errors(folder):
    a = grouped_batches(folder, 1, 3, seed=0, shard_index=0, shard_count=2)
    b = grouped_batches(folder, 1, 3, seed=0, shard_index=1, shard_count=2)
    ids_a = {int(a[s]["identity"][0]) for s in range(3)}
    ids_b = {int(b[s]["identity"][0]) for s in range(3)}
    assert ids_a.isdisjoint(ids_b) and len(ids_a | ids_b) == 6
    with pytest.raises(ValueError, match="identities per batch"):
        grouped_batches(folder, 7, 1, seed=0)
    with pytest.raises(ValueError, match="identities with >= 4 images"):
        grouped_batches(folder, 1, 4, seed=0)
    with pytest.raises(FileNotFoundError, match="not a jaxface dataset folder"):
        grouped_batches(folder / "nope", 1, 1, seed=0)


def test_eval_batches_cover_the_val_split_once_in_order(folder):
    ds = eval_batches(folder, identities_per_batch=1, images_per_identity=2)
    ids = np.concatenate([ds[i]["identity"] for i in range(len(ds))])
    # The val identities are new faces (numbered after the train ones), their first K images.
    np.testing.assert_array_equal(ids, [6, 6, 7, 7, 8, 8])
    np.testing.assert_array_equal(ds[0]["index"], [0, 1])
    train = grouped_batches(folder, 2, 2, seed=0)
    train_ids = {int(i) for s in range(3) for i in train[s]["identity"]}
    assert train_ids == set(range(6))
    assert eval_batches(folder, 1, 2, split="test") is None


def test_batches_are_read_only_a_few_ahead():
    """The iterator reads ahead a few batches, not grain's default 500 (which held ~5 GB of
    decoded batches during the first step's compilation of the README's command)."""
    import threading
    import time

    import grain

    read, lock = [], threading.Lock()

    def load(i):
        with lock:
            read.append(i)
        return {"x": np.full((4,), i)}

    batches = batch_iterator(grain.MapDataset.range(1000).map(load), start_step=10)
    assert next(batches)["x"][0] == 10
    time.sleep(1.0)         # let the read-ahead threads run as far as they would
    assert len(read) <= READ_AHEAD.prefetch_buffer_size + READ_AHEAD.num_threads + 1
    assert min(read) == 10
