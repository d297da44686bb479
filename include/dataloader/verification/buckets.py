"""Two tables compared in process: each side streamed as Arrow batches, every row's canonical text hashed
here (``canonical.py``), no hash computed inside either engine.

Pass 1 reads each side once and keeps, per bucket of the key's hash, the row count and two sums of the
row hashes (their low and high 32 bits, each summed exactly in 64 bits: no wrap-around below 2**32 rows
per bucket). Buckets whose (count, sums) differ get pass 2, which reads both sides again and keeps (key,
row hash) of the rows in those buckets only, at most ``pass_rows`` rows per pass (more passes when more
rows differ): memory holds the bucket arrays and a few batches per stream (``prefetched``: each driver
reads ahead while a batch is hashed; a side may be several streams, ``Streams``), whatever the table's size.

The hashes are polars' ``hash_rows`` (64-bit, seeded, over the canonical text columns, each column hashed
apart so column boundaries count). They are not stable across polars versions; both sides are hashed in
the same process, by the same version, so they need not be.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from include.dataloader.verification.canonical import FLOAT_DIGITS, canonical_frame, plain

BUCKETS = 1 << 16  # 65,536 buckets: ~15 rows each at 1M rows, 1.5 MB of sums per side
PASS_ROWS = 1_000_000  # (key, hash) pairs held at once in pass 2, per side
KEY_SEED, ROW_SEED = 0x5EED, 0x0DA7A


@dataclass(frozen=True)
class Streams:
    """One side's rows as several reads at once (key ranges of the source), each its own thread: a pass
    adds up their buckets alike, whatever order their batches come in."""

    parts: Sequence[Iterable[pa.RecordBatch]]


@dataclass(frozen=True)
class ArrowSide:
    """One side: ``scan()`` starts a new read of the compared rows (key columns first) as Arrow batches;
    ``kinds``: each column's (name, canonical kind), keys first; ``key_width``: how many are keys."""

    scan: Callable[[], Iterable[pa.RecordBatch] | Streams]
    kinds: Sequence[tuple[str, str]]
    key_width: int


@dataclass
class StreamDiff:
    source_rows: int = 0
    target_rows: int = 0
    missing_in_target: list[tuple] = field(default_factory=list)
    missing_in_source: list[tuple] = field(default_factory=list)
    different: list[tuple] = field(default_factory=list)
    buckets_differing: int = 0
    passes: int = 1
    max_batch_rows: int = 0  # the largest batch held (memory bound, tested)
    max_held: int = 0  # the most (key, hash) pairs one side held in a pass

    @property
    def equal(self) -> bool:
        return not (self.missing_in_target or self.missing_in_source or self.different)


@dataclass
class _Sums:
    counts: np.ndarray = field(default_factory=lambda: np.zeros(BUCKETS, np.int64))
    low: np.ndarray = field(default_factory=lambda: np.zeros(BUCKETS, np.uint64))
    high: np.ndarray = field(default_factory=lambda: np.zeros(BUCKETS, np.uint64))
    rows: int = 0
    max_batch: int = 0


class _Hasher:
    def __init__(self, side: ArrowSide, *, timestamp_precision: int, float_digits: int):
        self.side = side
        self.options = {"timestamp_precision": timestamp_precision, "float_digits": float_digits}

    def batches(self) -> Iterator[tuple[pa.RecordBatch, np.ndarray, np.ndarray]]:
        """(batch, bucket of each row, row hash of each row), batch by batch."""
        read = self.side.scan()
        scan = prefetched(*read.parts) if isinstance(read, Streams) else prefetched(read)
        try:
            for batch in scan:
                if batch.num_rows == 0:
                    continue
                frame = canonical_frame(batch, self.side.kinds, **self.options)
                keys = frame.select(frame.columns[: self.side.key_width])
                buckets = (keys.hash_rows(seed=KEY_SEED).to_numpy() % BUCKETS).astype(np.int64)
                yield batch, buckets, frame.hash_rows(seed=ROW_SEED).to_numpy()
        finally:
            scan.close()  # ends the drivers' cursors and connections

    def sums(self) -> _Sums:
        sums = _Sums()
        for batch, buckets, hashes in self.batches():
            sums.rows += batch.num_rows
            sums.max_batch = max(sums.max_batch, batch.num_rows)
            sums.counts += np.bincount(buckets, minlength=BUCKETS)
            for part, values in ((sums.low, hashes & 0xFFFFFFFF), (sums.high, hashes >> 32)):
                # float64 weights are exact below 2**53: a batch of under 2**21 rows of 32-bit values
                for start in range(0, len(values), 1 << 20):
                    chunk = slice(start, start + (1 << 20))
                    weights = np.bincount(buckets[chunk], weights=values[chunk].astype(np.float64), minlength=BUCKETS)
                    part += weights.astype(np.uint64)
        return sums

    def hashes_in(self, wanted: np.ndarray) -> dict[tuple, int]:
        """key -> row hash of the rows whose bucket is in ``wanted``."""
        found: dict[tuple, int] = {}
        width = self.side.key_width
        key_kinds = [kind for _, kind in self.side.kinds[:width]]
        for batch, buckets, hashes in self.batches():
            mask = np.isin(buckets, wanted)
            if not mask.any():
                continue
            rows = batch.filter(pa.array(mask))
            columns = [_key_values(plain(rows.column(i)), kind) for i, kind in enumerate(key_kinds)]
            found.update(zip(zip(*columns, strict=True), hashes[mask].tolist(), strict=True))
        return found


def prefetched(*streams: Iterable[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """The batches of ``streams``, each read ahead by a thread of its own, at most ``depth`` waiting per
    stream: the drivers read the next batches while one is hashed (memory: ``depth`` + 1 batches per
    stream). One stream's batches come in its order; several streams' interleave as they arrive."""
    import queue
    import threading

    waiting: queue.Queue = queue.Queue(maxsize=depth * max(1, len(streams)))
    stop = threading.Event()
    done = object()

    def read(batches: Iterable[pa.RecordBatch]) -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        waiting.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            waiting.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            waiting.put(exc)
        finally:
            if hasattr(batches, "close"):
                batches.close()

    readers = [threading.Thread(target=read, args=(s,), daemon=True) for s in streams]
    for reader in readers:
        reader.start()
    try:
        running = len(readers)
        while running:
            item = waiting.get()
            if item is done:
                running -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for reader in readers:
            while reader.is_alive():  # unblock a reader waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    waiting.get_nowait()
                reader.join(timeout=0.05)


def _key_values(array: pa.Array, kind: str) -> list[Any]:
    """Key values as the drivers give them, to be bound again: a decimal or a whole number read as text
    (a numeric, an oid) becomes a Decimal or an int."""
    values = array.to_pylist()
    if kind in ("decimal", "integer") and pa.types.is_string(array.type):
        number = Decimal if kind == "decimal" else int
        return [None if v is None else number(v) for v in values]
    return values


def compare_streams(
    source: ArrowSide,
    target: ArrowSide,
    *,
    timestamp_precision: int = 6,
    float_digits: int = FLOAT_DIGITS,
    pass_rows: int = PASS_ROWS,
) -> StreamDiff:
    """The keys missing on either side and those whose rows differ, both sides read at once."""
    hashers = [_Hasher(s, timestamp_precision=timestamp_precision, float_digits=float_digits) for s in (source, target)]
    with ThreadPoolExecutor(2) as pool:
        src, tgt = pool.map(lambda h: h.sums(), hashers)
        diff = StreamDiff(src.rows, tgt.rows, max_batch_rows=max(src.max_batch, tgt.max_batch))
        differing = np.flatnonzero((src.counts != tgt.counts) | (src.low != tgt.low) | (src.high != tgt.high))
        diff.buckets_differing = len(differing)
        for group in _groups(differing, np.maximum(src.counts, tgt.counts), pass_rows):
            diff.passes += 1
            source_hashes, target_hashes = pool.map(lambda h, g=group: h.hashes_in(g), hashers)
            diff.max_held = max(diff.max_held, len(source_hashes), len(target_hashes))
            changed = [k for k, _ in source_hashes.items() - target_hashes.items()]
            diff.missing_in_target += [k for k in changed if k not in target_hashes]
            diff.different += [k for k in changed if k in target_hashes]
            diff.missing_in_source += [k for k in target_hashes.keys() - source_hashes.keys()]
    for keys in (diff.missing_in_target, diff.missing_in_source, diff.different):
        keys.sort()
    return diff


def _groups(buckets: np.ndarray, rows: np.ndarray, limit: int) -> Iterator[np.ndarray]:
    """The differing buckets in runs holding at most ``limit`` rows each (one bucket may hold more)."""
    start, held = 0, 0
    for i, bucket in enumerate(buckets):
        if held and held + rows[bucket] > limit:
            yield buckets[start:i]
            start, held = i, 0
        held += int(rows[bucket])
    if start < len(buckets):
        yield buckets[start:]
