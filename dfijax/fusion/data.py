"""Training batches for the fusion GAN: a pure function of the step over any `FaceDataset`.

`Batches(dataset, size, batch, seed)(step)` draws `batch` distinct faces with
`np.random.default_rng([seed, step])` (the paper: random minibatches of 100), loads them at size×size
and maps them to [-1, 1]. Decoded images are kept in memory while the whole dataset fits in
`cache_bytes`; `Prefetched` loads the next steps' batches on threads while the device works.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Callable

import numpy as np

from dfijax.data import FaceDataset


def to_signed(x: np.ndarray) -> np.ndarray:
    """[0, 1] -> [-1, 1] (the networks' range)."""
    return (np.asarray(x, np.float32) * 2.0 - 1.0).astype(np.float32)


def to_unit(x: np.ndarray) -> np.ndarray:
    """[-1, 1] -> [0, 1] (for saving and display)."""
    return np.clip((np.asarray(x, np.float32) + 1.0) * 0.5, 0.0, 1.0)


class Batches:
    """batches(step) -> [batch, size, size, 3] float32 in [-1, 1], a pure function of (seed, step)."""

    def __init__(self, dataset: FaceDataset, size: int, batch: int, seed: int = 0,
                 indices: np.ndarray | None = None, cache_bytes: int = 2 << 30):
        self.dataset, self.size, self.batch, self.seed = dataset, size, batch, seed
        self.pool = np.arange(len(dataset)) if indices is None else np.asarray(indices)
        if len(self.pool) < batch:
            raise ValueError(f"{dataset.name} has {len(self.pool)} training faces, fewer than the batch of {batch}")
        fits = len(dataset) * size * size * 3 * 4 <= cache_bytes
        self._cache: dict[int, np.ndarray] | None = {} if fits else None
        self._lock = threading.Lock()

    def indices(self, step: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, step])
        return self.pool[rng.choice(len(self.pool), self.batch, replace=False)]

    def image(self, index: int) -> np.ndarray:
        """One face, [size, size, 3] float32 in [-1, 1]."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        x = to_signed(self.dataset.load(int(index), self.size))
        if self._cache is not None:
            with self._lock:
                self._cache[index] = x
        return x

    def __call__(self, step: int) -> np.ndarray:
        return np.stack([self.image(int(i)) for i in self.indices(step)])


class Prefetched:
    """Wraps a pure batches(step): calling it for step s also starts loading s+1 … s+depth on threads."""

    def __init__(self, batches: Callable[[int], np.ndarray], depth: int = 4, workers: int = 4):
        self.batches, self.depth = batches, depth
        self._pool = concurrent.futures.ThreadPoolExecutor(workers)
        self._pending: dict[int, concurrent.futures.Future] = {}

    def __call__(self, step: int) -> np.ndarray:
        for s in range(step, step + self.depth + 1):
            if s not in self._pending:
                self._pending[s] = self._pool.submit(self.batches, s)
        for s in [s for s in self._pending if s < step]:
            self._pending.pop(s).cancel()
        return self._pending.pop(step).result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
