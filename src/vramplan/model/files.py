"""True weight bytes from checkpoint files (safetensors, GGUF), read from headers only.

Why: a config tells us the architecture, but only the files tell us exactly how many bytes the
weights occupy (mixed dtypes, quantized layers, tied embeddings, extra tensors). We read the headers
and never the tensor data, so a 400 GB checkpoint costs a few kilobytes of I/O.

Every check here treats the file as hostile: claimed sizes are bounded against the real file size
before anything is allocated or looped over, and every failure raises ``FileFormatError`` saying
what is wrong and what to do.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import stat
import struct
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

from vramplan.errors import FileFormatError, UnsupportedModelError
from vramplan.ggml import GGML_BLOCKS
from vramplan.units import MAX_INT_DIGITS, shorten

# --------------------------------------------------------------------------------------------
# opening files
# --------------------------------------------------------------------------------------------

_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular(path: str | os.PathLike[str], what: str) -> BinaryIO:
    """Open ``path`` for binary reading only if it is a regular file (one-line FileFormatError otherwise).

    Why: a FIFO named ``x.gguf`` blocks ``open()`` forever and a device never ends. The file is opened
    non-blocking (so even a FIFO returns at once) and the check is made on the open descriptor, so
    nothing can be swapped in between check and read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file; pass an existing {what}") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path} is a folder, not a {what}: pass the file itself") from None
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot open the {what} ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
        raise FileFormatError(f"{path} is {kind}, not a {what}: pass a regular file")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def bounded_json_int(text: str) -> int:
    """``json.loads(parse_int=...)``: refuse integers of absurd length before Python converts them.

    Python's own refusal (over 4,300 digits) names ``sys.set_int_max_str_digits``, which is no help
    to someone with a corrupt file; shorter absurd integers would be accepted and then overflow.
    """
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(
            f"an integer of {len(text):,} digits ({shorten(text)}) is longer than any real count "
            f"or size (limit {MAX_INT_DIGITS} digits)"
        )
    return int(text)


# --------------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------------

#: Largest JSON header we accept (the reference implementation uses the same 100 MB bound).
MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024
#: Largest ``*.safetensors.index.json`` we read.
MAX_INDEX_BYTES = 64 * 1024 * 1024
#: Most dimensions a tensor may declare.
MAX_TENSOR_DIMS = 32
#: Most shard files an index may name (the largest real checkpoints have a few hundred).
MAX_INDEX_SHARDS = 10_000

#: Bits per element of every safetensors dtype (sub-byte types pack several elements per byte).
SAFETENSORS_DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

#: Integer container dtypes in which GPTQ/AWQ/compressed-tensors pack several int4/int8 values.
_PACKED_CONTAINER_DTYPES = frozenset({"I32", "U32", "U8", "I8", "I64", "U64", "I16", "U16"})
_PACKED_NAME_HINTS = ("qweight", "qzeros", "weight_packed", "packed")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's header entry: enough to know its bytes without reading it."""

    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    #: File name (not path) holding the tensor, so sharded checkpoints can be traced.
    file: str = ""

    @property
    def numel(self) -> int:
        """Element count (for packed int4 in an I32 container this counts containers)."""
        return math.prod(self.shape)


@dataclass
class CheckpointInfo:
    """What the headers of a safetensors checkpoint say about its weights.

    ``params_by_dtype`` counts *stored elements*: a GPTQ/AWQ ``qweight`` packing eight int4 values
    into one I32 counts as one I32 element, so it undercounts logical parameters for packed
    checkpoints (``notes`` says when that happens). ``bytes_by_dtype`` is exact either way.
    """

    tensors: dict[str, TensorInfo]
    total_bytes: int
    bytes_by_dtype: dict[str, int]
    params_by_dtype: dict[str, int]
    format: str = "safetensors"
    #: The ``__metadata__`` of the files (merged over shards) plus, for sharded checkpoints, the
    #: index's ``metadata`` entries under ``index.<key>``.
    metadata: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    #: ``metadata.total_size`` from ``model.safetensors.index.json`` when present.
    index_total_size: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def total_params(self) -> int:
        """Stored element count over all dtypes (see the class note about packed ints)."""
        return sum(self.params_by_dtype.values())


def read_safetensors(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Read tensor dtypes, shapes and byte sizes from a safetensors file, index or folder.

    ``path`` may be a ``.safetensors`` file, a ``*.safetensors.index.json`` index, or a folder
    holding either an index with its shards or one or more ``.safetensors`` files.
    """
    p = Path(path)
    if p.is_dir():
        indexes = sorted(p.glob("*.safetensors.index.json"))
        preferred = p / "model.safetensors.index.json"
        if preferred.is_file():
            return _read_sharded(preferred)
        if len(indexes) == 1:
            return _read_sharded(indexes[0])
        if len(indexes) > 1:
            raise FileFormatError(
                f"{p} holds several safetensors indexes ({', '.join(i.name for i in indexes)}): "
                "pass the index file you mean"
            )
        files = sorted(f for f in p.glob("*.safetensors") if f.is_file())
        if not files:
            raise FileFormatError(
                f"{p} holds no .safetensors file and no model.safetensors.index.json: "
                "pass a folder with safetensors weights, a .safetensors file or a .gguf file"
            )
        return _combine([(f.name, _read_header(f)) for f in files], [f.name for f in files])
    if p.name.endswith(".index.json"):
        return _read_sharded(p)
    if not p.exists():
        raise FileFormatError(f"{p}: no such file; pass an existing .safetensors file or folder")
    return _combine([(p.name, _read_header(p))], [p.name])


@dataclass(frozen=True)
class _Header:
    tensors: dict[str, tuple[str, tuple[int, ...], int]]  # name -> (dtype, shape, nbytes)
    metadata: dict[str, str]


def _read_header(path: Path) -> _Header:
    """Parse and validate one file's header; reads 8 + header-length bytes and nothing else."""
    try:
        with open_regular(path, "safetensors file") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 8:
                raise FileFormatError(
                    f"{path}: {size} bytes is too small for a safetensors file (it needs an 8-byte "
                    "header length); the file is truncated or not safetensors: re-download it"
                )
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > MAX_SAFETENSORS_HEADER_BYTES:
                raise FileFormatError(
                    f"{path}: header length {n} bytes exceeds the {MAX_SAFETENSORS_HEADER_BYTES} "
                    "byte limit; the file is corrupt or not safetensors"
                )
            if n > size - 8:
                raise FileFormatError(
                    f"{path}: header claims {n} bytes but the file has only {size - 8} after the "
                    "length field; the file is truncated: re-download it"
                )
            raw = fh.read(n)
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read the file ({exc})") from exc
    if len(raw) != n:
        raise FileFormatError(f"{path}: file shrank while reading the header; re-download it")
    return _parse_header(raw, size - 8 - n, str(path))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FileFormatError(f"duplicate key {key!r} in the JSON header")
        out[key] = value
    return out


def _is_int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def _parse_header(raw: bytes, data_size: int, where: str) -> _Header:
    """Validate a safetensors JSON header against a data buffer of ``data_size`` bytes."""
    try:
        obj = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_int=bounded_json_int
        )
    except FileFormatError as exc:
        raise FileFormatError(f"{where}: {exc}; the file is corrupt") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FileFormatError(
            f"{where}: the safetensors header is not valid JSON ({type(exc).__name__}: "
            f"{str(exc)[:200]}); the file is corrupt or not safetensors: re-download it"
        ) from None
    return _validate_entries(obj, data_size, where)


def _validate_entries(obj: Any, data_size: int | None, where: str) -> _Header:
    if not isinstance(obj, dict):
        raise FileFormatError(
            f"{where}: the safetensors header must be a JSON object, got {type(obj).__name__}"
        )
    tensors: dict[str, tuple[str, tuple[int, ...], int]] = {}
    spans: list[tuple[int, int, str]] = []
    metadata: dict[str, str] = {}
    for name, entry in obj.items():
        if name == "__metadata__":
            if entry is None:
                continue
            if not isinstance(entry, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in entry.items()
            ):
                raise FileFormatError(
                    f"{where}: __metadata__ must map strings to strings; the file is corrupt"
                )
            metadata.update(entry)
            continue
        if not isinstance(entry, dict):
            raise FileFormatError(f"{where}: tensor {name!r} entry is not a JSON object")
        dtype = entry.get("dtype")
        shape = entry.get("shape")
        offsets = entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPE_BITS:
            raise FileFormatError(
                f"{where}: tensor {name!r} has unknown dtype {dtype!r}; known dtypes: "
                f"{', '.join(SAFETENSORS_DTYPE_BITS)}"
            )
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_TENSOR_DIMS
            or not all(_is_int(d) and d >= 0 for d in shape)
        ):
            raise FileFormatError(
                f"{where}: tensor {name!r} has an invalid shape {str(shape)[:100]} "
                f"(expected a list of at most {MAX_TENSOR_DIMS} non-negative integers)"
            )
        numel = math.prod(shape)
        bits = numel * SAFETENSORS_DTYPE_BITS[dtype]
        if bits % 8:
            raise FileFormatError(
                f"{where}: tensor {name!r} of {dtype} with shape {shape} does not fill whole bytes"
            )
        nbytes = bits // 8
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
        ):
            raise FileFormatError(
                f"{where}: tensor {name!r} needs data_offsets [begin, end] as two integers, "
                f"got {str(offsets)[:100]}"
            )
        begin, end = offsets
        if begin < 0 or end < begin:
            raise FileFormatError(f"{where}: tensor {name!r} has invalid data_offsets {offsets}")
        if data_size is not None and end > data_size:
            raise FileFormatError(
                f"{where}: tensor {name!r} data_offsets end at {end} but the data section has "
                f"only {data_size} bytes; the file is truncated: re-download it"
            )
        if end - begin != nbytes:
            raise FileFormatError(
                f"{where}: tensor {name!r} spans {end - begin} bytes but {dtype} x {shape} "
                f"needs {nbytes}; the header is inconsistent"
            )
        tensors[name] = (dtype, tuple(shape), nbytes)
        spans.append((begin, end, name))
    spans.sort()
    for (_, prev_end, prev_name), (begin, end, name) in pairwise(spans):
        if begin < prev_end and end > begin:
            raise FileFormatError(
                f"{where}: tensors {prev_name!r} and {name!r} overlap in the data section; "
                "the file is corrupt"
            )
    return _Header(tensors=tensors, metadata=metadata)


def _read_sharded(index_path: Path) -> CheckpointInfo:
    """Read an index file and every shard header it names."""
    with open_regular(index_path, "safetensors index") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > MAX_INDEX_BYTES:
            raise FileFormatError(
                f"{index_path}: {size} bytes is larger than any real index ({MAX_INDEX_BYTES} max)"
            )
        try:
            raw = fh.read(MAX_INDEX_BYTES + 1)
        except OSError as exc:
            raise FileFormatError(f"{index_path}: cannot read the index ({exc})") from None
    try:
        index = json.loads(raw.decode("utf-8"), parse_int=bounded_json_int)
    except (ValueError, RecursionError) as exc:
        raise FileFormatError(
            f"{index_path}: not a valid JSON index ({str(exc)[:200]}); re-download it"
        ) from None
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        raise FileFormatError(f"{index_path}: the index has no 'weight_map' object")
    weight_map: dict[str, Any] = index["weight_map"]
    # Unique shard names first (one C-speed pass, insertion-ordered), then each name checked once;
    # deduplicating in a list was quadratic in the entries.
    try:
        shard_names: dict[Any, None] = dict.fromkeys(weight_map.values())
    except TypeError:  # an unhashable value (a list, an object) cannot name a file
        tensor, value = next((t, v) for t, v in weight_map.items() if not isinstance(v, str))
        raise FileFormatError(
            f"{index_path}: tensor {tensor!r} maps to {str(value)[:100]!r}, which is not a plain "
            "file name in the same folder"
        ) from None
    if len(shard_names) > MAX_INDEX_SHARDS:
        raise FileFormatError(
            f"{index_path}: the index names {len(shard_names):,} shard files (real checkpoints use "
            f"at most a few hundred; limit {MAX_INDEX_SHARDS:,}); the index is corrupt"
        )
    for shard in shard_names:
        if (
            not isinstance(shard, str)
            or not shard
            or shard in (".", "..")
            or "/" in shard
            or "\\" in shard
            or "\x00" in shard
        ):
            tensor = next(t for t, v in weight_map.items() if v == shard)
            raise FileFormatError(
                f"{index_path}: tensor {tensor!r} maps to {str(shard)[:100]!r}, which is not a "
                "plain file name in the same folder"
            )
    meta = index.get("metadata") or {}
    if not isinstance(meta, dict):
        raise FileFormatError(f"{index_path}: 'metadata' must be a JSON object")
    total_size = meta.get("total_size")
    index_total = int(total_size) if _is_int(total_size) or isinstance(total_size, float) else None
    headers: list[tuple[str, _Header]] = []
    for shard in shard_names:
        shard_path = index_path.parent / shard
        if not shard_path.exists():
            raise FileFormatError(
                f"{index_path}: shard {shard} is listed in the index but missing from "
                f"{index_path.parent}; the download is incomplete: download every shard"
            )
        headers.append((shard, _read_header(shard_path)))
    present = {shard: set(h.tensors) for shard, h in headers}
    for tensor, shard in weight_map.items():
        if tensor not in present[shard]:
            raise FileFormatError(
                f"{index_path}: the index puts {tensor!r} in {shard} but that shard does not hold "
                "it; the index and shards do not match: re-download them"
            )
    info = _combine(headers, list(shard_names))
    info.index_total_size = index_total
    for key, value in meta.items():
        info.metadata[f"index.{key}"] = value
    if index_total is not None and index_total != info.total_bytes:
        note = (
            f"index metadata.total_size is {index_total} bytes but the shard headers sum to "
            f"{info.total_bytes}; the headers are used"
        )
        info.notes = (*info.notes, note)
    return info


def _combine(headers: list[tuple[str, _Header]], files: list[str]) -> CheckpointInfo:
    tensors: dict[str, TensorInfo] = {}
    bytes_by: dict[str, int] = {}
    params_by: dict[str, int] = {}
    metadata: dict[str, Any] = {}
    packed: list[str] = []
    for fname, header in headers:
        metadata.update(header.metadata)
        for name, (dtype, shape, nbytes) in header.tensors.items():
            if name in tensors:
                raise FileFormatError(
                    f"tensor {name!r} appears in both {tensors[name].file} and {fname}; "
                    "the checkpoint is inconsistent"
                )
            t = TensorInfo(dtype=dtype, shape=shape, nbytes=nbytes, file=fname)
            tensors[name] = t
            bytes_by[dtype] = bytes_by.get(dtype, 0) + nbytes
            params_by[dtype] = params_by.get(dtype, 0) + t.numel
            if dtype in _PACKED_CONTAINER_DTYPES and any(h in name for h in _PACKED_NAME_HINTS):
                packed.append(name)
    notes: list[str] = []
    if packed:
        notes.append(
            f"{len(packed)} tensors (e.g. {packed[0]!r}) pack several low-bit values per integer "
            "element; params_by_dtype counts the containers, not the logical parameters"
        )
    return CheckpointInfo(
        tensors=tensors,
        total_bytes=sum(bytes_by.values()),
        bytes_by_dtype=bytes_by,
        params_by_dtype=params_by,
        metadata=metadata,
        files=tuple(files),
        notes=tuple(notes),
    )


def checkpoint_from_header_dicts(
    headers: dict[str, dict[str, Any]], *, where: str = "hub"
) -> CheckpointInfo:
    """Build a CheckpointInfo from already-parsed header objects (file name -> header JSON).

    Used for headers fetched from the Hub; the data size is unknown so offsets are checked for
    self-consistency only.
    """
    parsed = [
        (fname, _validate_entries(obj, None, f"{where}:{fname}")) for fname, obj in headers.items()
    ]
    return _combine(parsed, list(headers))


# --------------------------------------------------------------------------------------------
# GGUF
# --------------------------------------------------------------------------------------------

#: The one table of ggml block layouts lives in vramplan.ggml (shared with precision and llama.cpp).
GGML_TYPE_BYTES = GGML_BLOCKS


def ggml_bits_per_weight(type_name: str) -> float:
    """Average bits per weight of a ggml type, scales included (Q4_K -> 4.5)."""
    try:
        nbytes, nvalues = GGML_TYPE_BYTES[type_name.upper()]
    except KeyError:
        raise FileFormatError(
            f"unknown ggml type {type_name!r}; known: {', '.join(GGML_TYPE_BYTES)}"
        ) from None
    return 8 * nbytes / nvalues


#: Bounds applied before trusting any count or length in a GGUF header.
#: Real files hold ~300-3,000 tensors and ~30-60 metadata keys; the limits leave a wide margin while
#: refusing a small file that claims 2**20 entries (each costs a Python object and a loop step).
MAX_GGUF_TENSORS = 1 << 16
MAX_GGUF_KV = 1 << 14
MAX_GGUF_STRING = 64 * 1024 * 1024
MAX_GGUF_ARRAY = 1 << 26
#: Strings are walked one by one: real vocabularies and merge lists hold at most ~300k.
MAX_GGUF_STRING_ARRAY = 1 << 20
MAX_GGUF_DIMS = 4
#: Arrays up to this length are kept in ``GGUFInfo.metadata``; longer ones (vocabularies) only
#: have their length recorded.
KEEP_ARRAY_MAX = 4096

# GGUF value types: id -> (struct code, size); 8 = string, 9 = array.
_GGUF_SCALARS: dict[int, tuple[str, int]] = {
    0: ("B", 1),
    1: ("b", 1),
    2: ("H", 2),
    3: ("h", 2),
    4: ("I", 4),
    5: ("i", 4),
    6: ("f", 4),
    7: ("?", 1),
    10: ("Q", 8),
    11: ("q", 8),
    12: ("d", 8),
}
_GGUF_STRING = 8
_GGUF_ARRAY = 9


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor of a GGUF file; ``shape`` is in GGUF order (fastest-varying dimension first)."""

    name: str
    type_name: str
    shape: tuple[int, ...]
    n_elements: int
    nbytes: int
    #: Absolute offset of the tensor data in the file.
    offset: int


@dataclass
class GGUFInfo:
    """Everything a GGUF header says that memory estimation needs."""

    path: str
    version: int
    architecture: str
    file_size: int
    alignment: int
    data_offset: int
    #: llama.cpp file type name such as ``MOSTLY_Q4_K_M`` (None when the key is absent).
    file_type: str | None
    file_type_id: int | None
    #: All key/values; arrays longer than KEEP_ARRAY_MAX are left out (see ``array_lengths``).
    metadata: dict[str, Any]
    array_lengths: dict[str, int]
    tensors: dict[str, GGUFTensor]
    total_bytes: int
    bytes_by_type: dict[str, int]
    params_by_type: dict[str, int]
    #: Bytes of ``token_embd.weight``: llama.cpp keeps it in host memory, not on the GPU.
    token_embd_bytes: int
    vocab_size: int | None
    #: True when there is no separate ``output.weight`` (the LM head reuses token_embd).
    tied_embeddings: bool
    #: Every file read: one, or all splits of a ``-00001-of-0000N.gguf`` set.
    files: tuple[str, ...] = ()

    def hparam(self, suffix: str, default: Any = None) -> Any:
        """Value of ``{architecture}.{suffix}`` (e.g. ``attention.head_count``) or ``default``."""
        return self.metadata.get(f"{self.architecture}.{suffix}", default)

    @property
    def total_params(self) -> int:
        """Total element count of all tensors."""
        return sum(self.params_by_type.values())

    @property
    def bits_per_weight(self) -> float:
        """Average stored bits per element over the whole file's tensors."""
        n = self.total_params
        return 8 * self.total_bytes / n if n else 0.0


class _Cursor:
    """Bounds-checked reader over a memory map; every read fails cleanly past the end."""

    def __init__(self, buf: mmap.mmap | bytes, where: str, endian: str = "<") -> None:
        self.buf = buf
        self.size = len(buf)
        self.pos = 0
        self.where = where
        self.endian = endian

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise FileFormatError(
                f"{self.where}: {what} at byte {self.pos} needs {n} bytes but the file ends at "
                f"{self.size}; the file is truncated or corrupt: re-download it"
            )

    def unpack(self, code: str, size: int, what: str) -> Any:
        self.need(size, what)
        (value,) = struct.unpack_from(self.endian + code, self.buf, self.pos)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return int(self.unpack("I", 4, what))

    def u64(self, what: str) -> int:
        return int(self.unpack("Q", 8, what))

    def skip_string(self, what: str) -> None:
        """Step over one string without copying it (vocabularies are long)."""
        self.need(8, f"{what} length")
        (n,) = struct.unpack_from(self.endian + "Q", self.buf, self.pos)
        self.pos += 8
        if n > MAX_GGUF_STRING:
            raise FileFormatError(
                f"{self.where}: {what} claims a {n}-byte string (limit {MAX_GGUF_STRING}); "
                "the file is corrupt or hostile"
            )
        self.need(n, what)
        self.pos += n

    def string(self, what: str, decode: bool = True) -> str | None:
        n = self.u64(f"{what} length")
        if n > MAX_GGUF_STRING:
            raise FileFormatError(
                f"{self.where}: {what} claims a {n}-byte string (limit {MAX_GGUF_STRING}); "
                "the file is corrupt or hostile"
            )
        self.need(n, what)
        start = self.pos
        self.pos += n
        if not decode:
            return None
        try:
            return bytes(self.buf[start : start + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise FileFormatError(f"{self.where}: {what} is not valid UTF-8") from None


def _walk_value(cur: _Cursor, vtype: int, key: str, keep: bool) -> tuple[Any, int | None]:
    """Validate (and, when ``keep``, decode) one GGUF value; returns (value, array length)."""
    if vtype in _GGUF_SCALARS:
        code, size = _GGUF_SCALARS[vtype]
        return cur.unpack(code, size, f"value of {key!r}"), None
    if vtype == _GGUF_STRING:
        return cur.string(f"value of {key!r}", decode=keep), None
    if vtype == _GGUF_ARRAY:
        itype = cur.u32(f"array type of {key!r}")
        n = cur.u64(f"array length of {key!r}")
        if n > MAX_GGUF_ARRAY:
            raise FileFormatError(
                f"{cur.where}: array {key!r} claims {n} elements (limit {MAX_GGUF_ARRAY}); "
                "the file is corrupt or hostile"
            )
        keep_items = keep and n <= KEEP_ARRAY_MAX
        if itype in _GGUF_SCALARS:
            code, size = _GGUF_SCALARS[itype]
            cur.need(n * size, f"array {key!r}")
            values = None
            if keep_items:
                values = list(struct.unpack_from(f"{cur.endian}{n}{code}", cur.buf, cur.pos))
            cur.pos += n * size
            return values, n
        if itype == _GGUF_STRING:
            # Each string needs at least its 8-byte length: bound n before looping.
            if n > MAX_GGUF_STRING_ARRAY:
                raise FileFormatError(
                    f"{cur.where}: string array {key!r} claims {n} elements (limit "
                    f"{MAX_GGUF_STRING_ARRAY}); the file is corrupt or hostile"
                )
            cur.need(n * 8, f"array {key!r}")
            if keep_items:
                return [cur.string(f"element of {key!r}") for _ in range(n)], n
            for _ in range(n):
                cur.skip_string(f"element of {key!r}")
            return None, n
        raise FileFormatError(
            f"{cur.where}: array {key!r} has element type {itype}, which GGUF does not define "
            "(nested arrays are not supported)"
        )
    raise FileFormatError(f"{cur.where}: key {key!r} has unknown value type {vtype}")


def _ggml_type_name(type_id: int, where: str, tensor: str) -> str:
    from gguf.constants import GGMLQuantizationType

    try:
        name = GGMLQuantizationType(type_id).name
    except ValueError:
        raise FileFormatError(
            f"{where}: tensor {tensor!r} has ggml type id {type_id}, which this version of the "
            "gguf package does not know; upgrade gguf or check the file"
        ) from None
    if name not in GGML_TYPE_BYTES:
        raise FileFormatError(f"{where}: tensor {tensor!r} has unsupported ggml type {name}")
    return name


def _walk_gguf(buf: mmap.mmap, where: str, require_arch: bool = True) -> GGUFInfo:
    """Validate the whole GGUF header with hard bounds and decode it."""
    from gguf.constants import GGUF_MAGIC, LlamaFileType

    cur = _Cursor(buf, where)
    cur.need(24, "GGUF header")
    magic = struct.unpack_from("<I", buf, 0)[0]
    if magic != GGUF_MAGIC:
        raise FileFormatError(
            f"{where}: not a GGUF file (magic {bytes(buf[0:4])!r}, expected b'GGUF'); "
            "pass a .gguf file"
        )
    cur.pos = 4
    version = cur.u32("version")
    if version & 0xFFFF == 0:  # written on a big-endian machine
        cur.endian = ">"
        version = struct.unpack_from(">I", buf, 4)[0]
    if version not in (2, 3):
        raise FileFormatError(
            f"{where}: GGUF version {version} is not supported (only 2 and 3); "
            "convert the file with a current llama.cpp"
        )
    n_tensors = cur.u64("tensor count")
    n_kv = cur.u64("metadata count")
    remaining = cur.size - cur.pos
    if n_kv > MAX_GGUF_KV or n_kv * 13 > remaining:
        raise FileFormatError(
            f"{where}: header claims {n_kv:,} metadata entries (real files hold under a hundred; "
            f"limit {MAX_GGUF_KV:,}, and at least 13 bytes each in a {cur.size:,}-byte file); the "
            "file is corrupt or hostile"
        )
    metadata: dict[str, Any] = {}
    array_lengths: dict[str, int] = {}
    for i in range(n_kv):
        key = cur.string(f"metadata key #{i}")
        assert key is not None
        if key in metadata or key in array_lengths:
            raise FileFormatError(f"{where}: metadata key {key!r} appears twice")
        vtype = cur.u32(f"type of {key!r}")
        value, alen = _walk_value(cur, vtype, key, keep=True)
        if alen is not None:
            array_lengths[key] = alen
            if value is not None:
                metadata[key] = value
        else:
            metadata[key] = value
    remaining = cur.size - cur.pos
    # A tensor info is at least 8 (name len) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
    if n_tensors > MAX_GGUF_TENSORS or n_tensors * 24 > remaining:
        raise FileFormatError(
            f"{where}: header claims {n_tensors:,} tensors (real files hold a few thousand; limit "
            f"{MAX_GGUF_TENSORS:,}, and at least 24 bytes each in a {cur.size:,}-byte file); the "
            "file is corrupt or hostile"
        )
    raw_tensors: list[tuple[str, str, tuple[int, ...], int]] = []
    for i in range(n_tensors):
        name = cur.string(f"tensor name #{i}")
        assert name is not None
        n_dims = cur.u32(f"dimension count of {name!r}")
        if n_dims > MAX_GGUF_DIMS:
            raise FileFormatError(
                f"{where}: tensor {name!r} claims {n_dims} dimensions (GGUF allows {MAX_GGUF_DIMS})"
            )
        dims = tuple(cur.u64(f"dimension of {name!r}") for _ in range(n_dims))
        type_name = _ggml_type_name(cur.u32(f"type of {name!r}"), where, name)
        offset = cur.u64(f"offset of {name!r}")
        raw_tensors.append((name, type_name, dims, offset))
    alignment = metadata.get("general.alignment", 32)
    if (
        not _is_int(alignment)
        or alignment <= 0
        or alignment & (alignment - 1)
        or alignment > 1 << 20
    ):
        raise FileFormatError(
            f"{where}: general.alignment {alignment!r} is not a power of two up to 1 MiB"
        )
    data_offset = -(-cur.pos // alignment) * alignment
    tensors: dict[str, GGUFTensor] = {}
    bytes_by: dict[str, int] = {}
    params_by: dict[str, int] = {}
    for name, type_name, dims, offset in raw_tensors:
        if name in tensors:
            raise FileFormatError(f"{where}: tensor {name!r} appears twice")
        block_bytes, block_values = GGML_TYPE_BYTES[type_name]
        n_el = math.prod(dims)
        if dims and dims[0] % block_values:
            raise FileFormatError(
                f"{where}: tensor {name!r} of {type_name} has first dimension {dims[0]}, not a "
                f"multiple of the {block_values}-value block"
            )
        nbytes = n_el // block_values * block_bytes
        start = data_offset + offset
        if offset % alignment or start + nbytes > cur.size:
            raise FileFormatError(
                f"{where}: tensor {name!r} ({nbytes} bytes at data offset {offset}) lies outside "
                f"the {cur.size}-byte file or is misaligned; the file is truncated: re-download it"
            )
        tensors[name] = GGUFTensor(name, type_name, dims, n_el, nbytes, start)
        bytes_by[type_name] = bytes_by.get(type_name, 0) + nbytes
        params_by[type_name] = params_by.get(type_name, 0) + n_el
    arch = metadata.get("general.architecture", "" if not require_arch else None)
    if not isinstance(arch, str) or (require_arch and not arch):
        split_no, split_count = metadata.get("split.no"), metadata.get("split.count")
        if _is_int(split_no) and _is_int(split_count) and split_count > 1:
            raise FileFormatError(
                f"{where}: this is split {split_no + 1} of {split_count} of a split GGUF; pass "
                "the first split (the file named ...-00001-of-NNNNN.gguf)"
            )
        raise FileFormatError(
            f"{where}: general.architecture is missing; this GGUF does not describe a model"
        )
    ft_id = metadata.get("general.file_type")
    ft_name: str | None = None
    if _is_int(ft_id):
        try:
            ft_name = LlamaFileType(ft_id).name
        except ValueError:
            ft_name = f"UNKNOWN_{ft_id}"
    embd = tensors.get("token_embd.weight")
    vocab = metadata.get(f"{arch}.vocab_size")
    if not _is_int(vocab):
        vocab = array_lengths.get("tokenizer.ggml.tokens")
    if vocab is None and embd is not None and len(embd.shape) == 2:
        vocab = embd.shape[1]
    return GGUFInfo(
        path=where,
        version=version,
        architecture=arch,
        file_size=cur.size,
        alignment=alignment,
        data_offset=data_offset,
        file_type=ft_name,
        file_type_id=ft_id if _is_int(ft_id) else None,
        metadata=metadata,
        array_lengths=array_lengths,
        tensors=tensors,
        total_bytes=sum(bytes_by.values()),
        bytes_by_type=bytes_by,
        params_by_type=params_by,
        token_embd_bytes=embd.nbytes if embd else 0,
        vocab_size=vocab,
        tied_embeddings="output.weight" not in tensors,
    )


#: Above this many metadata array elements GGUFReader is too slow to cross-check by default
#: (it builds numpy arrays per element: about 4 s for a 150k-token vocabulary).
CROSS_CHECK_MAX_ARRAY_ELEMENTS = 65536
#: GGUFReader builds numpy views per tensor and per key (about 5 KB and 100 us each), so it is
#: skipped above this many; real models hold a few thousand tensors at most.
CROSS_CHECK_MAX_TENSORS = 8192


def read_gguf(path: str | os.PathLike[str], *, cross_check: bool | None = None) -> GGUFInfo:
    """Read a GGUF file's metadata and tensor table; tensor data is never read.

    Our own bounded walk validates every count, length and offset first, because
    ``gguf.GGUFReader`` trusts them (an array claiming 2**40 elements past the end of the file
    makes it loop forever). Then ``gguf.GGUFReader`` parses the same, now known-sane, header and
    its tensor table must agree with ours. ``cross_check=None`` does that only for headers whose
    metadata arrays hold at most CROSS_CHECK_MAX_ARRAY_ELEMENTS elements, since the reader is slow
    on real vocabularies. Any failure is a FileFormatError.

    A split model (``name-00001-of-00003.gguf``, as written by ``llama-gguf-split``) is read as a
    whole when given its first split: the tensors of every split are added up.
    """
    p = Path(path)
    info = _read_one_gguf(p, require_arch=True, cross_check=cross_check)
    count = info.metadata.get("split.count")
    if not _is_int(count) or count <= 1:
        return info
    number = info.metadata.get("split.no", 0)
    match = _SPLIT_NAME_RE.fullmatch(p.name)
    if number != 0 or match is None:
        raise FileFormatError(
            f"{p}: this is split {number + 1 if _is_int(number) else '?'} of {count} of a split "
            "GGUF; pass the first split (the file named ...-00001-of-NNNNN.gguf)"
        )
    width = len(match.group(2))
    infos = [info]
    for i in range(2, count + 1):
        sibling = p.with_name(f"{match.group(1)}-{i:0{width}d}-of-{match.group(3)}.gguf")
        if not sibling.is_file():
            raise FileFormatError(
                f"{p}: split {i} of {count} ({sibling.name}) is missing; download every split"
            )
        infos.append(_read_one_gguf(sibling, require_arch=False, cross_check=cross_check))
    return _merge_splits(infos)


_SPLIT_NAME_RE = re.compile(r"(.*)-(\d{5})-of-(\d{5})\.gguf")


def _merge_splits(infos: list[GGUFInfo]) -> GGUFInfo:
    first = infos[0]
    tensors: dict[str, GGUFTensor] = {}
    bytes_by: dict[str, int] = {}
    params_by: dict[str, int] = {}
    for part in infos:
        for name, t in part.tensors.items():
            if name in tensors:
                raise FileFormatError(f"{part.path}: tensor {name!r} also appears in another split")
            tensors[name] = t
            bytes_by[t.type_name] = bytes_by.get(t.type_name, 0) + t.nbytes
            params_by[t.type_name] = params_by.get(t.type_name, 0) + t.n_elements
    embd = tensors.get("token_embd.weight")
    vocab = first.vocab_size
    if vocab is None and embd is not None and len(embd.shape) == 2:
        vocab = embd.shape[1]
    return replace(
        first,
        tensors=tensors,
        total_bytes=sum(bytes_by.values()),
        bytes_by_type=bytes_by,
        params_by_type=params_by,
        token_embd_bytes=embd.nbytes if embd else 0,
        vocab_size=vocab,
        tied_embeddings="output.weight" not in tensors,
        file_size=sum(i.file_size for i in infos),
        files=tuple(i.path for i in infos),
    )


def _read_one_gguf(p: Path, *, require_arch: bool, cross_check: bool | None) -> GGUFInfo:
    where = str(p)
    try:
        with open_regular(p, "GGUF file") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 24:
                raise FileFormatError(
                    f"{where}: {size} bytes is too small for a GGUF file; it is truncated or not "
                    "GGUF: re-download it"
                )
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                info = _walk_gguf(buf, where, require_arch)
    except FileNotFoundError:
        raise FileFormatError(f"{where}: no such file; pass an existing .gguf file") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(f"{where}: cannot read the file ({exc})") from None
    info.files = (where,)
    if cross_check is None:
        cross_check = (
            sum(info.array_lengths.values()) <= CROSS_CHECK_MAX_ARRAY_ELEMENTS
            and len(info.tensors) <= CROSS_CHECK_MAX_TENSORS
            and len(info.metadata) <= CROSS_CHECK_MAX_TENSORS
        )
    if cross_check:
        _cross_check_with_reader(p, info)
    return info


def _cross_check_with_reader(path: Path, info: GGUFInfo) -> None:
    """Parse with gguf.GGUFReader and compare; it is the reference implementation."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(path)
        theirs = {t.name: (t.tensor_type.name, int(t.n_bytes)) for t in reader.tensors}
        arch_field = reader.get_field("general.architecture")
        arch = arch_field.contents() if arch_field is not None else None
        del reader
    except FileFormatError:
        raise
    except Exception as exc:
        raise FileFormatError(
            f"{path}: gguf.GGUFReader rejects the file ({type(exc).__name__}: {str(exc)[:200]}); "
            "the file is corrupt: re-download it"
        ) from None
    ours = {t.name: (t.type_name, t.nbytes) for t in info.tensors.values()}
    if theirs != ours or (arch or "") != info.architecture:
        raise FileFormatError(
            f"{path}: the header parses inconsistently (gguf.GGUFReader disagrees on the tensor "
            "table); the file is corrupt or uses a GGUF variant we do not support"
        )


# --------------------------------------------------------------------------------------------
# GGUF -> HF-style config
# --------------------------------------------------------------------------------------------

#: GGUF architecture -> HF model_type for dense models, and for their MoE variant when
#: ``expert_count`` > 0.
_GGUF_ARCH_TO_HF: dict[str, tuple[str, str | None]] = {
    "llama": ("llama", "mixtral"),
    "mistral3": ("mistral", None),
    "qwen2": ("qwen2", None),
    "qwen2moe": ("qwen2_moe", "qwen2_moe"),
    "qwen3": ("qwen3", None),
    "qwen3moe": ("qwen3_moe", "qwen3_moe"),
    "gemma": ("gemma", None),
    "gemma2": ("gemma2", None),
    "gemma3": ("gemma3_text", None),
    "phi3": ("phi3", None),
    "gpt-oss": ("gpt_oss", "gpt_oss"),
}


def _uniform(info: GGUFInfo, suffix: str) -> Any:
    """A hyper-parameter that may be stored per layer; a per-layer array must be uniform."""
    value = info.hparam(suffix)
    key = f"{info.architecture}.{suffix}"
    if key in info.array_lengths:
        if not isinstance(value, list) or not value:
            raise UnsupportedModelError(f"{info.path}: {key} is a long per-layer array")
        if len(set(value)) != 1:
            raise UnsupportedModelError(
                f"{info.path}: {key} varies per layer ({sorted(set(value))[:8]}); such models "
                "need their HF config.json: pass it instead of the GGUF"
            )
        return value[0]
    return value


def gguf_to_hf_config(info: GGUFInfo) -> dict[str, Any]:
    """Map llama-family GGUF metadata to an HF-style config dict for the estimator.

    Raises UnsupportedModelError for architectures outside the mapping table and FileFormatError
    when a required key is missing.
    """
    arch = info.architecture
    if arch not in _GGUF_ARCH_TO_HF:
        raise UnsupportedModelError(
            f"{info.path}: GGUF architecture {arch!r} cannot be mapped to a config yet "
            f"(supported: {', '.join(sorted(_GGUF_ARCH_TO_HF))}); pass the model's HF config.json "
            "or Hub id instead"
        )

    def required(suffix: str) -> Any:
        value = _uniform(info, suffix)
        if value is None:
            raise FileFormatError(
                f"{info.path}: GGUF key {arch}.{suffix} is missing; the file lacks the metadata "
                "needed to describe the model: pass its HF config.json instead"
            )
        return value

    n_experts = int(_uniform(info, "expert_count") or 0)
    dense_type, moe_type = _GGUF_ARCH_TO_HF[arch]
    if n_experts and moe_type is None:
        raise UnsupportedModelError(
            f"{info.path}: {arch} with {n_experts} experts has no HF mapping; pass its config.json"
        )
    model_type = moe_type if n_experts else dense_type
    hidden = int(required("embedding_length"))
    heads = int(required("attention.head_count"))
    kv_heads = int(_uniform(info, "attention.head_count_kv") or heads)
    key_len = _uniform(info, "attention.key_length")
    head_dim = int(key_len) if key_len else hidden // heads
    cfg: dict[str, Any] = {
        "model_type": model_type,
        "architectures": [],
        "hidden_size": hidden,
        "num_hidden_layers": int(required("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "vocab_size": info.vocab_size,
        "max_position_embeddings": int(required("context_length")),
        "tie_word_embeddings": info.tied_embeddings,
        "vramplan_source": "gguf",
        "gguf_file_type": info.file_type,
    }
    ff = _uniform(info, "feed_forward_length")
    if ff:
        cfg["intermediate_size"] = int(ff)
    value_len = _uniform(info, "attention.value_length")
    if value_len and int(value_len) != head_dim:
        cfg["v_head_dim"] = int(value_len)
    eps = info.hparam("attention.layer_norm_rms_epsilon")
    if eps is not None:
        cfg["rms_norm_eps"] = float(eps)
    theta = info.hparam("rope.freq_base")
    if theta is not None:
        cfg["rope_theta"] = float(theta)
    window = info.hparam("attention.sliding_window")
    if window:
        cfg["sliding_window"] = int(window)
    scaling_type = info.hparam("rope.scaling.type")
    if scaling_type and scaling_type != "none":
        scaling: dict[str, Any] = {"rope_type": scaling_type, "type": scaling_type}
        factor = info.hparam("rope.scaling.factor")
        if factor is not None:
            scaling["factor"] = float(factor)
        orig = info.hparam("rope.scaling.original_context_length")
        if orig is not None:
            scaling["original_max_position_embeddings"] = int(orig)
        cfg["rope_scaling"] = scaling
    if n_experts:
        used = int(required("expert_used_count"))
        expert_ff = _uniform(info, "expert_feed_forward_length")
        if model_type == "mixtral":
            cfg["num_local_experts"] = n_experts
            cfg["num_experts_per_tok"] = used
        elif model_type == "gpt_oss":
            cfg["num_local_experts"] = n_experts
            cfg["num_experts_per_tok"] = used
            cfg["experts_per_token"] = used
            if expert_ff:
                cfg["intermediate_size"] = int(expert_ff)
        else:  # qwen2_moe / qwen3_moe
            cfg["num_experts"] = n_experts
            cfg["num_experts_per_tok"] = used
            if expert_ff:
                cfg["moe_intermediate_size"] = int(expert_ff)
            shared_ff = _uniform(info, "expert_shared_feed_forward_length")
            if shared_ff:
                cfg["shared_expert_intermediate_size"] = int(shared_ff)
    if cfg["vocab_size"] is None:
        raise FileFormatError(
            f"{info.path}: cannot tell the vocabulary size (no {arch}.vocab_size, no tokenizer "
            "tokens, no token_embd.weight); pass the HF config.json instead"
        )
    return cfg
