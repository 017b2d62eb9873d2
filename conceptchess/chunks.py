"""Big arrays on disk as a row of ``.npy`` chunks: written atomically, read back lazily as one array.

A chunk is written through :class:`ChunkWriter` — to a temporary file, block by block, then fsync'ed
and renamed — so a chunk file either exists complete or not at all.
:class:`ChunkedArray` concatenates such files along the first axis without loading them: indexing
reads only the chunks it touches, ``np.asarray`` materialises the whole array.

>>> arr = ChunkedArray(["a/chunk_00000.npy", "a/chunk_00001.npy"], [4096, 100], (64, 8, 8), "float16")  # doctest: +SKIP
>>> arr.shape, arr[5].shape, arr[4090:4100].shape, np.asarray(arr[[0, 4100]]).shape   # doctest: +SKIP
((4196, 64, 8, 8), (64, 8, 8), (10, 64, 8, 8), (2, 64, 8, 8))
"""

from __future__ import annotations

import bisect
import os
import sys
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from conceptchess.errors import ConceptChessError

_OPEN_CHUNKS = 16  # memory maps kept open per array (each holds a file descriptor)


def cast_into(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src`` with dtype conversion; float32 → float16 goes through torch (5–20× faster than numpy here).

    Both round to nearest even, so the bytes are the same either way.
    """
    if dst.dtype != src.dtype and dst.shape == src.shape and dst.flags.c_contiguous and dst.flags.writeable:
        torch = sys.modules.get("torch")  # only when already loaded (networks load it); never import it for this
        if torch is not None and src.flags.c_contiguous and src.flags.writeable:
            try:
                torch.from_numpy(dst).copy_(torch.from_numpy(src))
                return
            except (TypeError, RuntimeError):
                pass
    dst[...] = src


class ChunkWriter:
    """Write one chunk file front to back into ``.<name>.part``; :meth:`commit` renames it into place.

    Rows come in order (``write(0, a)``, ``write(len(a), b)``, …) in any dtype and are converted.

    >>> w = ChunkWriter("block0/chunk_00000.npy", (4096, 64, 8, 8), "float16")   # doctest: +SKIP
    >>> w.write(0, rows); w.commit()                                            # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], dtype):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.part")
        self.shape, self.dtype = tuple(int(d) for d in shape), np.dtype(dtype)
        self.rows = 0
        self._buf = np.empty(0, self.dtype)
        self.f = open(self.tmp, "wb")
        np.lib.format.write_array_header_1_0(self.f, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                      "fortran_order": False, "shape": self.shape})

    def write(self, start: int, rows: np.ndarray) -> None:
        if start != self.rows or rows.shape[1:] != self.shape[1:] or start + len(rows) > self.shape[0]:
            raise ValueError(f"rows {start}…{start + len(rows)} of shape {rows.shape[1:]} do not continue "
                             f"{self.path.name} (written {self.rows} of {self.shape})")
        if rows.dtype == self.dtype:
            out = np.ascontiguousarray(rows)
        else:
            if self._buf.size < rows.size:
                self._buf = np.empty(rows.size, self.dtype)
            out = self._buf[: rows.size].reshape(rows.shape)
            cast_into(out, rows)
        self.f.write(memoryview(out).cast("B"))
        self.rows += len(rows)

    def commit(self) -> None:
        """Flush, fsync and rename into place: the chunk file appears complete or not at all."""
        if self.rows != self.shape[0]:
            raise ValueError(f"{self.path.name}: {self.rows} of {self.shape[0]} rows written")
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)


def chunk_is_valid(path: str | os.PathLike, shape: tuple[int, ...], dtype) -> bool:
    """Whether ``path`` is a readable ``.npy`` file of exactly this shape and dtype (header and size)."""
    try:
        a = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return a.shape == tuple(shape) and a.dtype == np.dtype(dtype)


def _is_basic(index) -> bool:
    return index is None or index is Ellipsis or isinstance(index, (int, np.integer, slice))


class ChunkedArray:
    """Chunk files concatenated along axis 0, read lazily through memory maps.

    ``lengths[i]`` rows of shape ``tail`` live in ``paths[i]``. Supports ``len``, ``shape``,
    ``dtype``, ``arr[i]``, ``arr[a:b:c]``, ``arr[int_array]``, ``arr[bool_mask]`` (each followed by any
    indices on the other axes; after an index array only basic ones), ``np.asarray(arr)`` and
    :meth:`iter_chunks`. Results are ordinary in-memory arrays.
    """

    def __init__(self, paths: list[str | os.PathLike], lengths: list[int], tail: tuple[int, ...], dtype):
        if len(paths) != len(lengths):
            raise ValueError("one length per chunk path")
        self.paths = [Path(p) for p in paths]
        self.lengths = [int(n) for n in lengths]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)]).astype(np.int64)
        self.tail = tuple(int(d) for d in tail)
        self.dtype = np.dtype(dtype)
        self._open: OrderedDict[int, np.ndarray] = OrderedDict()

    # -- array protocol -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.offsets[-1]),) + self.tail

    @property
    def ndim(self) -> int:
        return 1 + len(self.tail)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __repr__(self) -> str:
        return f"ChunkedArray(shape={self.shape}, dtype={self.dtype}, chunks={len(self.paths)})"

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("a ChunkedArray cannot be viewed as one array without copying")
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    # -- chunks -----------------------------------------------------------------------------------
    def chunk(self, c: int) -> np.ndarray:
        """The memory map of chunk ``c`` (read-only)."""
        m = self._open.get(c)
        if m is not None:
            self._open.move_to_end(c)
            return m
        try:
            m = np.lib.format.open_memmap(self.paths[c], mode="r")
        except FileNotFoundError:
            raise ConceptChessError(f"{self.paths[c]}: chunk file missing") from None
        except (OSError, ValueError) as e:
            raise ConceptChessError(f"{self.paths[c]}: unreadable chunk file ({e})") from None
        if m.shape != (self.lengths[c],) + self.tail or m.dtype != self.dtype:
            raise ConceptChessError(f"{self.paths[c]}: chunk has shape {m.shape} {m.dtype}, expected "
                                    f"{(self.lengths[c],) + self.tail} {self.dtype}")
        self._open[c] = m
        if len(self._open) > _OPEN_CHUNKS:
            self._open.popitem(last=False)
        return m

    def iter_chunks(self) -> Iterator[np.ndarray]:
        """Each chunk as a read-only memory map, in order: stream a store without loading it."""
        for c in range(len(self.paths)):
            yield self.chunk(c)

    # -- indexing -----------------------------------------------------------------------------------
    def __getitem__(self, key):
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) and key else (key, ())
        n = len(self)
        if first is Ellipsis or first is None:
            return np.asarray(self)[key]
        if isinstance(first, (int, np.integer)):
            i = int(first) + n if first < 0 else int(first)
            if not 0 <= i < n:
                raise IndexError(f"index {int(first)} is out of bounds for axis 0 with size {n}")
            c = bisect.bisect_right(self.offsets, i) - 1
            return np.array(self.chunk(c)[(i - int(self.offsets[c]),) + rest])
        if isinstance(first, slice):
            start, stop, step = first.indices(n)
            if step == 1:
                out = self._range(start, max(start, stop))
            else:
                out = self._take(np.arange(start, stop, step, dtype=np.int64))
            return out[(slice(None),) + rest] if rest else out
        idx = np.asarray(first)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"boolean index of shape {idx.shape} does not match axis 0 of size {n}")
            idx = np.flatnonzero(idx)
        elif idx.dtype.kind not in "iu":
            raise IndexError(f"cannot index a ChunkedArray with {type(first).__name__} of dtype {idx.dtype}")
        if not all(_is_basic(r) for r in rest):
            raise IndexError("after an index array only basic indices (ints, slices) are supported; use np.asarray(arr)[...]")
        flat = idx.reshape(-1).astype(np.int64)
        flat = np.where(flat < 0, flat + n, flat)
        if flat.size and (flat.min() < 0 or flat.max() >= n):
            raise IndexError(f"index out of bounds for axis 0 with size {n}")
        out = self._take(flat).reshape(idx.shape + self.tail)
        return out[(slice(None),) * idx.ndim + rest] if rest else out

    def _range(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start,) + self.tail, self.dtype)
        c = bisect.bisect_right(self.offsets, start) - 1
        pos = start
        while pos < stop:
            lo = int(self.offsets[c])
            hi = min(stop, int(self.offsets[c + 1]))
            out[pos - start : hi - start] = self.chunk(c)[pos - lo : hi - lo]
            pos, c = hi, c + 1
        return out

    def _take(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx),) + self.tail, self.dtype)
        cid = np.searchsorted(self.offsets, idx, side="right") - 1
        for c in np.unique(cid):
            sel = np.flatnonzero(cid == c)
            out[sel] = self.chunk(int(c))[idx[sel] - self.offsets[c]]
        return out
