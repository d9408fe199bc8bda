"""Batched inference (beatframe.models.batching): concurrent calls of one shape share a denoising call,
packed into a memory budget; out-of-memory batches split; and on a tiny Wan model two concurrent
shots come out of one batched call with the frames each gets alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from beatframe.models.batching import Batcher, items_that_fit


class OutOfMemory(RuntimeError):
    pass


def _batcher(capacity=3, window=0.5, fail=None, oom_above=None):
    calls = []

    def run(shape, items):
        calls.append((shape, list(items)))
        if oom_above is not None and len(items) > oom_above:
            raise OutOfMemory("CUDA out of memory")
        if fail is not None and fail in items:
            raise ValueError(f"bad item {fail}")
        return [f"{shape}:{item}" for item in items]

    told = []
    batcher = Batcher(run, capacity=lambda shape: capacity, is_out_of_memory=lambda e: isinstance(e, OutOfMemory),
                      on_out_of_memory=lambda shape, size: told.append((shape, size)), window_seconds=window)
    return batcher, calls, told


def _submit_together(batcher, requests):
    start = threading.Barrier(len(requests))

    def one(request):
        start.wait()
        try:
            return batcher.submit(*request)
        except Exception as exc:  # noqa: BLE001
            return exc

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


@pytest.mark.parametrize("budget, per_item, limit, expected", [
    (10e9, None, 8, 1),     # unmeasured: one, which measures it
    (10e9, 1e9, 8, 8),      # 9 fit after the 10 % reserve: the limit holds
    (10e9, 2e9, 8, 4),      # 9 GB / 2 GB
    (1e9, 2e9, 8, 1),       # not even one fits: one anyway (it may still, or step down)
    (80e9, 12e9, 8, 6),
])
def test_items_that_fit(budget, per_item, limit, expected):
    assert items_that_fit(budget_bytes=budget, per_item_bytes=per_item, limit=limit) == expected


def test_concurrent_calls_of_one_shape_share_a_call():
    batcher, calls, _ = _batcher(capacity=3)
    results = _submit_together(batcher, [("a", i) for i in range(3)])
    assert results == ["a:0", "a:1", "a:2"]
    assert batcher.batch_sizes == [3] and len(calls) == 1


def test_capacity_and_shapes_keep_calls_apart():
    batcher, calls, _ = _batcher(capacity=2)
    results = _submit_together(batcher, [("a", 0), ("b", 1), ("a", 2), ("a", 3), ("b", 4)])
    assert results == ["a:0", "b:1", "a:2", "a:3", "b:4"]
    assert all(len(items) <= 2 for _, items in calls)
    assert sorted(batcher.batch_sizes) == [1, 2, 2]


def test_a_lone_call_waits_at_most_the_window():
    import time

    batcher, _, _ = _batcher(capacity=4, window=0.2)
    t0 = time.monotonic()
    assert batcher.submit("a", 1) == "a:1"
    assert time.monotonic() - t0 < 1.0


def test_errors_reach_every_call_of_the_batch_and_only_them():
    batcher, _, _ = _batcher(capacity=2, fail=1)
    results = _submit_together(batcher, [("a", 0), ("a", 1)])
    assert all(isinstance(r, ValueError) for r in results)
    assert batcher.submit("a", 5) == "a:5"  # the batcher goes on


def test_out_of_memory_batches_split_until_they_fit():
    batcher, calls, told = _batcher(capacity=4, oom_above=1)
    results = _submit_together(batcher, [("a", i) for i in range(4)])
    assert results == ["a:0", "a:1", "a:2", "a:3"]
    assert batcher.batch_sizes == [4, 2, 1, 1, 2, 1, 1]
    assert told == [("a", 4), ("a", 2), ("a", 2)]
    single, _, _ = _batcher(capacity=1, oom_above=0)
    with pytest.raises(OutOfMemory):  # one alone that does not fit: the caller steps down
        single.submit("a", 0)


def test_a_capacity_that_cannot_be_told_runs_calls_one_at_a_time():
    def unknown(shape):
        raise RuntimeError("no device to ask")

    batcher = Batcher(lambda shape, items: [item * 2 for item in items], capacity=unknown,
                      is_out_of_memory=lambda e: False, window_seconds=0.1)
    assert _submit_together(batcher, [("a", 1), ("a", 2)]) == [2, 4]
    assert batcher.batch_sizes == [1, 1]


# ------------------------------------------------------------------------------- tiny Wan
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from tiny_wan import build_tiny_wan_models

    return build_tiny_wan_models(tmp_path_factory.mktemp("models"))


def _generator(models_dir, *, max_batch, prompt="w1 w2 w3"):
    from beatframe.models.wan import WanGenerator
    from beatframe.models.wan_loader import DEFAULT_MODELS, WanOptions

    return WanGenerator(kind="t2v", model=DEFAULT_MODELS["t2v"], models_dir=models_dir, prompt=prompt,
                        negative_prompt="w4", num_inference_steps=2, min_steps=1, max_sequence_length=16,
                        options=WanOptions(device="cpu", max_area=32 * 32, max_batch=max_batch))


def test_two_concurrent_wan_calls_run_as_one_batch_with_their_own_frames(tiny_models):
    solo = {seed: _generator(tiny_models, max_batch=None).generate_native(
        width=16, height=32, num_frames=9, seed=seed, prompt=prompt) for seed, prompt in ((1, "w1 w2"), (2, "w3"))}
    generators = [_generator(tiny_models, max_batch=2), _generator(tiny_models, max_batch=2)]
    batcher_calls_before = len(generators[0].pipeline().batcher.batch_sizes)
    start = threading.Barrier(2)

    def shot(args):
        gen, seed, prompt = args
        start.wait()
        return gen.generate_native(width=16, height=32, num_frames=9, seed=seed, prompt=prompt)

    with ThreadPoolExecutor(2) as pool:
        batched = dict(zip((1, 2), pool.map(shot, [(generators[0], 1, "w1 w2"), (generators[1], 2, "w3")])))
    assert generators[0].pipeline().batcher.batch_sizes[batcher_calls_before:] == [2]
    assert all(g.stats["batch_size"] == 2 for g in generators)
    for seed in (1, 2):
        assert batched[seed].shape == (9, 32, 16, 3)
        # its own noise and prompt: equal to its solo frames up to batched-kernel rounding
        assert np.abs(batched[seed].astype(int) - solo[seed].astype(int)).max() <= 2
    # and not each other's: the two differ far more than either does from its solo frames
    rounding = max(np.abs(batched[s].astype(int) - solo[s].astype(int)).mean() for s in (1, 2))
    assert np.abs(batched[1].astype(int) - batched[2].astype(int)).mean() > 10 * rounding + 0.5
