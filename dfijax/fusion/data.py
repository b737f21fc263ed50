"""Training batches for the fusion GAN: a pure function of the step over any `FaceDataset`.

`Batches(dataset, size, batch, seed)(step)` draws `batch` distinct faces with
`np.random.default_rng([seed, step])` (the paper: random minibatches of 100), loads them at size×size
and maps them to [-1, 1]. `holdout_split` picks the training and held-out images (the paper's
2,599, CelebA's test partition, or the last few). Decoded images are kept in memory while the whole dataset fits in
`cache_bytes`; `Prefetched` loads the next steps' batches on threads while the device works.

For one or many processes, `sharded_loader` is a grain DataLoader over the same faces: the records
run through one permutation of the training pool per epoch (`np.random.default_rng([seed, epoch])`,
the remainder of each epoch dropped so a batch never repeats a face), global batch s holds positions
[s·B, (s+1)·B) of that order, and process p of P reads only rows [p·B/P, (p+1)·B/P) of it, the rows
its devices hold in the global array. The global batches therefore do not depend on the number of
processes, and the iterator's state (grain's JSON, saved in the orbax checkpoint) is a function of
the step alone (`loader_state`), so a run resumes on any process count that divides the batch.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import json
import sys
import threading
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from grain import python as grain

from dfijax.data import DataError, FaceDataset, celeba
from dfijax.data.synthetic_faces import synthetic_faces

HELD_OUT_LAST = 16  # holdout "last": this many images at the end of the dataset
PAPER_TRAIN_COUNT = 200_000  # the paper: 200,000 training images, "the remaining 2,599" for testing
PAPER_TEST_COUNT = 2_599


def holdout_split(
    ids: Sequence[str], holdout: str, partition: Mapping[str, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, held-out indices) into `ids` (a dataset's image ids, in order).

    holdout: "last": the last HELD_OUT_LAST images are held out, the rest train (any dataset).
    "celeba-test": CelebA's own split from `partition` (file name -> 0 train, 1 validation, 2 test,
    as `dfijax.data.celeba.parse_celeba_partition` reads it): train on 0, hold out 2, leave 1 unused
    (19,962 test images on the full set). "paper-count": the paper's split by file number: the first
    200,000 files (000001.jpg–200000.jpg) train, the remaining 2,599 (200001.jpg–202599.jpg) are held
    out. Indices are sorted int64 arrays; one-line ValueErrors when a split cannot be made."""
    n = len(ids)
    if holdout == "last":
        if n <= HELD_OUT_LAST:
            raise ValueError(f"holdout 'last' needs more than {HELD_OUT_LAST} images, the dataset has {n}")
        return np.arange(n - HELD_OUT_LAST), np.arange(n - HELD_OUT_LAST, n)
    if holdout == "celeba-test":
        if partition is None:
            raise ValueError(
                "holdout 'celeba-test' needs CelebA's list_eval_partition.txt (--data celeba), or use --holdout last"
            )
        missing = [i for i in ids if i not in partition]
        if missing:
            raise ValueError(
                f"{missing[0]} (and {len(missing) - 1} more) not in the CelebA partition file: "
                "is it the list_eval_partition.txt of this image folder?"
            )
        part = np.asarray([partition[i] for i in ids])
        train, held = np.flatnonzero(part == 0), np.flatnonzero(part == 2)
    elif holdout == "paper-count":
        try:
            numbers = np.asarray([int(str(i).rsplit(".", 1)[0]) for i in ids])
        except ValueError:
            raise ValueError(
                "holdout 'paper-count' needs CelebA file names (000001.jpg ...): use the CelebA "
                "folder (--data celeba) or --holdout last"
            ) from None
        train, held = np.flatnonzero(numbers <= PAPER_TRAIN_COUNT), np.flatnonzero(numbers > PAPER_TRAIN_COUNT)
    else:
        raise ValueError(f"holdout must be 'last', 'celeba-test' or 'paper-count', got {holdout!r}")
    if len(held) == 0 or len(train) == 0:
        which = "held-out" if len(held) == 0 else "training"
        raise ValueError(f"holdout {holdout!r} leaves no {which} images among the {n} loaded (drop --limit?)")
    return train.astype(np.int64), held.astype(np.int64)


def to_signed(x: np.ndarray) -> np.ndarray:
    """[0, 1] -> [-1, 1] (the networks' range)."""
    return (np.asarray(x, np.float32) * 2.0 - 1.0).astype(np.float32)


def to_unit(x: Any) -> Any:
    """[-1, 1] -> [0, 1], clipped: for saving and display, and what the VGG sees. Numpy arrays, lists
    and numbers give float32 numpy; jax arrays (traced ones too) give jax arrays of their dtype."""
    if isinstance(x, jax.Array):
        return jnp.clip((x + 1.0) * 0.5, 0.0, 1.0)
    return np.clip((np.asarray(x, np.float32) + 1.0) * 0.5, 0.0, 1.0)


class Batches:
    """batches(step) -> [batch, size, size, 3] float32 in [-1, 1], a pure function of (seed, step)."""

    def __init__(
        self,
        dataset: FaceDataset,
        size: int,
        batch: int,
        seed: int = 0,
        indices: np.ndarray | None = None,
        cache_bytes: int = 2 << 30,
    ):
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


class GlobalOrderSampler:
    """A grain Sampler whose global batches do not depend on the number of processes.

    Record order: per epoch, `np.random.default_rng([seed, epoch]).permutation(num_records)`, its first
    `batch · (num_records // batch)` entries (steps_per_epoch global batches). grain's DataLoader asks
    process p of P (shard_options: index p, count P) for sampler indices i = k·P + p, its k-th record;
    that is row p·b + k mod b of global batch k // b, b = batch / P."""

    def __init__(self, num_records: int, batch: int, shard_options: Any, seed: int = 0):
        count = shard_options.shard_count
        if batch % count:
            raise ValueError(f"a batch of {batch} does not split over {count} processes; use a multiple of {count}")
        if num_records < batch:
            raise ValueError(f"{num_records} records are fewer than the batch of {batch}")
        self._shard_options = shard_options  # grain's DataLoader reads the sharding from here
        self.num_records, self.batch, self.seed = num_records, batch, seed
        self.steps_per_epoch = num_records // batch

    def __len__(self) -> int:
        return sys.maxsize // 2

    def __repr__(self) -> str:  # grain checks it when an iterator state is restored
        o = self._shard_options
        return (
            f"GlobalOrderSampler(num_records={self.num_records}, batch={self.batch}, seed={self.seed}, "
            f"shard={o.shard_index}/{o.shard_count})"
        )

    @functools.lru_cache(maxsize=2)
    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_records)

    def record_key(self, step: int, row: int) -> int:
        """Record of row `row` of global batch `step`."""
        epoch, s = divmod(step, self.steps_per_epoch)
        return int(self._order(epoch)[s * self.batch + row])

    def __getitem__(self, index: int):

        count = self._shard_options.shard_count
        local_rows = self.batch // count
        k, p = divmod(index, count)
        step, j = divmod(k, local_rows)
        return grain.RecordMetadata(index=index, record_key=self.record_key(step, p * local_rows + j))


class FaceSource:
    """grain RandomAccessDataSource over a pool of a FaceDataset's images: record r ->
    {"image": [size, size, 3] float32 in [-1, 1], "id": int64 index into the dataset}."""

    def __init__(self, images: "Batches"):
        self.images = images

    def __len__(self) -> int:
        return len(self.images.pool)

    def __repr__(self) -> str:
        return f"FaceSource({self.images.dataset.name!r}, {len(self)} images, {self.images.size} px)"

    def __getitem__(self, record: int) -> dict[str, np.ndarray]:
        index = int(self.images.pool[record])
        return {"image": self.images.image(index), "id": np.int64(index)}


class ShardedLoader:
    """This process's rows of each global batch, from a grain DataLoader: iterating yields {"image":
    [batch/P, size, size, 3] float32 in [-1, 1], "id": [batch/P] int64 dataset indices} for ever (see
    the module docstring); `state_at(step)` is the iterator's grain state after `step` global batches.

    shard_options: grain ShardOptions (default grain.ShardByJaxProcess(): this process among all of the
    job's). Images are read on `threads` threads ahead of use; grain's iterator state stays exact."""

    def __init__(
        self,
        dataset: FaceDataset,
        size: int,
        batch: int,
        seed: int = 0,
        indices: np.ndarray | None = None,
        shard_options: Any = None,
        threads: int = 8,
        cache_bytes: int = 2 << 30,
    ):

        self.shard_options = shard_options or grain.ShardByJaxProcess(drop_remainder=True)
        self.images = Batches(dataset, size, batch, seed, indices=indices, cache_bytes=cache_bytes)
        self.batch = batch
        self.local_batch = batch // self.shard_options.shard_count
        self.sampler = GlobalOrderSampler(len(self.images.pool), batch, self.shard_options, seed)
        self.source = FaceSource(self.images)
        self.loader = grain.DataLoader(
            data_source=self.source,
            sampler=self.sampler,
            worker_count=0,
            shard_options=self.shard_options,
            operations=[grain.Batch(self.local_batch, drop_remainder=True)],
            read_options=grain.ReadOptions(
                num_threads=threads, prefetch_buffer_size=max(2 * self.local_batch, threads)
            ),
        )

    def __iter__(self):
        """A grain DataLoaderIterator (get_state() / set_state(bytes), orbax-checkpointable)."""
        return iter(self.loader)

    def global_ids(self, step: int) -> np.ndarray:
        """The dataset indices of global batch `step`, [batch] int64 (every process's rows, in order)."""
        return np.asarray([self.images.pool[self.sampler.record_key(step, r)] for r in range(self.batch)], np.int64)

    def state_at(self, step: int) -> bytes:
        """The iterator's state after `step` global batches, as get_state() returns it then: what a run
        resumed on another number of processes sets (grain's own checkpoint is per process)."""
        count, index = self.shard_options.shard_count, self.shard_options.shard_index
        seen = step * self.local_batch  # records this process has read
        return json.dumps(
            {
                "version": 2,
                "last_seen_indices": {"0": (seen - 1) * count + index},
                "last_worker_index": -1,
                "worker_count": 0,
                "sampler": repr(self.sampler),
                "data_source": repr(self.source),
            },
            indent=4,
        ).encode()


EVAL_IMAGES = 16  # held-out images evaluated after training (the first two are the samples' pair)
DATA_KINDS = ("synthetic", "celeba", "celeba-tfds")


@dataclasses.dataclass(frozen=True)
class FusionData:
    """A run's images: the training dataset with its training indices, the held-out dataset with its
    held-out indices (the same dataset for every hold-out but tfds' own test split), the hold-out kind
    ("last", "celeba-test", "paper-count") and a sentence describing the split."""

    train: FaceDataset
    train_idx: np.ndarray
    held: FaceDataset
    held_idx: np.ndarray
    holdout: str
    description: str

    def describe(self) -> str:
        return self.train.describe()

    def evaluated_ids(self, n: int = EVAL_IMAGES) -> list[str]:
        """The ids of the held-out images that are evaluated (the first n)."""
        return [self.held.ids[int(i)] for i in self.held_idx[:n]]

    def held_images(self, size: int, n: int = EVAL_IMAGES) -> np.ndarray:
        """The first n held-out images, [min(n, held), size, size, 3] float32 in [-1, 1]."""
        return np.stack([to_signed(self.held.load(int(i), size)) for i in self.held_idx[:n]])

    def holdout_info(self, n: int = EVAL_IMAGES) -> dict[str, Any]:
        """{"kind", "train_images", "held_out_images", "description", "evaluated": ids} (for a run's files)."""
        return {
            "kind": self.holdout,
            "train_images": len(self.train_idx),
            "held_out_images": len(self.held_idx),
            "description": self.description,
            "evaluated": self.evaluated_ids(n),
        }


_SPLIT_TEXT = {
    "last": "the last {h} images held out",
    "celeba-test": "CelebA's list_eval_partition: {t} train images for training, {h} test images held out "
    "(validation unused)",
    "paper-count": "the paper's split: files up to 200000.jpg for training ({t}), {h} held out",
}


def load_data(
    kind: str = "synthetic",
    data_dir: str | None = None,
    *,
    holdout: str = "last",
    limit: int | None = None,
    n_synthetic: int = 2000,
    seed: int = 0,
) -> FusionData:
    """The faces to train on and to hold out.

    kind: "synthetic" (min(n_synthetic, limit) embedded synthetic faces drawn with `seed`), "celeba"
    (the CelebA folder data_dir: list_attr_celeba.txt, img_align_celeba/ and, for holdout
    "celeba-test", list_eval_partition.txt) or "celeba-tfds" (tensorflow-datasets' celeb_a under the
    tfds data_dir; holdout "celeba-test" trains on its train split and holds out the first
    EVAL_IMAGES of its test split). limit: only the first `limit` images. holdout: see `holdout_split`.
    One-line errors: DataError (a dataset that is missing or malformed), ValueError (a split that
    cannot be made)."""

    if kind not in DATA_KINDS:
        raise ValueError(f"unknown fusion data {kind!r}; use one of {', '.join(DATA_KINDS)}")
    partition = None
    if kind == "synthetic":
        data = synthetic_faces(n_synthetic if limit is None else min(limit, n_synthetic), seed)
    elif kind == "celeba":
        if not data_dir:
            raise DataError(
                "--data celeba needs --data-dir (the folder with list_attr_celeba.txt and img_align_celeba/)"
            )
        data = celeba.load_celeba_folder(data_dir, limit=limit)
        partition = celeba.load_celeba_partition(data_dir) if holdout == "celeba-test" else None
    else:
        if holdout == "paper-count":
            raise ValueError("--holdout paper-count needs CelebA's file names: use --data celeba (the folder)")
        if holdout == "celeba-test":  # tfds celeb_a's splits are CelebA's partition
            train = celeba.load_celeba_tfds(data_dir, split="train", limit=limit)
            held = celeba.load_celeba_tfds(data_dir, split="test", limit=EVAL_IMAGES)
            text = (
                f"tfds celeb_a: train split ({len(train)}) for training, the first {len(held)} of the test "
                "split held out"
            )
            return FusionData(train, np.arange(len(train)), held, np.arange(len(held)), holdout, text)
        data = celeba.load_celeba_tfds(data_dir, limit=limit)
    train_idx, held_idx = holdout_split(data.ids, holdout, partition)
    text = _SPLIT_TEXT[holdout].format(t=len(train_idx), h=len(held_idx))
    return FusionData(data, train_idx, data, held_idx, holdout, text)
