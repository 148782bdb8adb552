import numpy as np
import pytest

from jaxface.data.pipeline import batch_iterator, eval_batches, grouped_batches
from jaxface.data.synthetic import SynthSettings, generate


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    generate(out, identities=6, per_identity=2, seed=3, settings=SynthSettings(
        image_size=32, uv_size=32, occluder_prob=0.0), batch=4, progress=False,
        val_identities=3)
    return out


def test_batches_are_whole_identity_groups(folder):
    ds = grouped_batches(folder, identities_per_batch=2, seed=11)
    for step in range(7):
        batch = ds[step]
        ids = batch["identity"]
        assert ids.shape == (4,) and ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
        assert batch["image"].dtype == np.float32 and batch["image"].max() <= 1.0
        assert batch["image"].shape == (4, 32, 32, 3) and batch["mask"].shape == (4, 32, 32, 1)
    # One epoch (3 batches of 2 of the 6 identities) sees every identity once.
    seen = np.concatenate([ds[s]["identity"][::2] for s in range(3)])
    assert sorted(seen) == list(range(6))
    other = np.concatenate([grouped_batches(folder, 2, seed=12)[s]["identity"][::2]
                            for s in range(3)])
    assert not np.array_equal(seen, other)  # the seed decides the order


def test_resume_at_a_step_continues_identically(folder):
    ds = grouped_batches(folder, identities_per_batch=2, seed=5)
    first = batch_iterator(ds)
    reference = [next(first) for _ in range(5)]
    resumed = batch_iterator(grouped_batches(folder, identities_per_batch=2, seed=5), 3)
    for step in (3, 4):
        got = next(resumed)
        for key in ("image", "identity", "landmarks"):
            np.testing.assert_array_equal(got[key], reference[step][key])


def test_worker_processes_give_the_same_batches(folder):
    ds = grouped_batches(folder, identities_per_batch=2, seed=5)
    it = batch_iterator(ds, 1, workers=2)
    got = [np.array(next(it)["identity"]) for _ in range(3)]
    del it
    assert all(np.array_equal(g, ds[1 + i]["identity"]) for i, g in enumerate(got))


def test_host_shards_are_disjoint_and_errors(folder):
    a = grouped_batches(folder, 1, seed=0, shard_index=0, shard_count=2)
    b = grouped_batches(folder, 1, seed=0, shard_index=1, shard_count=2)
    ids_a = {int(a[s]["identity"][0]) for s in range(3)}
    ids_b = {int(b[s]["identity"][0]) for s in range(3)}
    assert ids_a.isdisjoint(ids_b) and len(ids_a | ids_b) == 6
    with pytest.raises(ValueError, match="identities per batch"):
        grouped_batches(folder, 7, seed=0)
    with pytest.raises(FileNotFoundError, match="not a jaxface dataset folder"):
        grouped_batches(folder / "nope", 1, seed=0)


def test_eval_batches_cover_the_val_split_once_in_order(folder):
    ds = eval_batches(folder, identities_per_batch=1)
    ids = np.concatenate([ds[i]["identity"] for i in range(len(ds))])
    # The val identities are new faces (numbered after the train ones), K images each.
    np.testing.assert_array_equal(ids, [6, 6, 7, 7, 8, 8])
    train = grouped_batches(folder, 2, seed=0)
    train_ids = {int(i) for s in range(3) for i in train[s]["identity"]}
    assert train_ids == set(range(6))
    assert eval_batches(folder, 1, split="test") is None
