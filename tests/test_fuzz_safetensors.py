"""Fuzzing `bpgpu.load` on safetensors files, as tests/test_fuzz_checkpoint.py does for `.npz` ones:
bytes edited anywhere, and headers forged field by field. Whatever the file, `load` either returns a
sound network (only for a file that is still valid) or raises `ValueError` starting with the file's
name, within bounded time and memory; nothing else."""

from __future__ import annotations

import json
import struct

from fuzz_models import BASES, attempt, base, edits
from fuzzing import edited, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

BYTE_EXAMPLES = 300
HEADER_EXAMPLES = 300
NAME = "model.safetensors"


@fuzz_settings(BYTE_EXAMPLES)
@given(index=st.sampled_from(range(len(BASES))), changes=st.lists(edits, min_size=1, max_size=3))
def test_edited_bytes_load_soundly_or_are_refused(index, changes):
    _, data = base(index, NAME)
    for change in changes:
        data = edited(data, change)
    attempt(data, NAME)  # a flip inside a float can leave a valid file with other values: sound is enough


def split(data: bytes) -> tuple[dict, bytes]:
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + size]), data[8 + size :]


values = st.one_of(
    st.integers(-(1 << 70), 1 << 70),
    st.lists(st.integers(-3, 1 << 40), max_size=4),
    st.sampled_from(["F32", "F64", "F16", "I64", "BOOL", "", "x" * 50]),
    st.none(),
    st.floats(allow_nan=False),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@fuzz_settings(HEADER_EXAMPLES)
@given(
    index=st.sampled_from(range(len(BASES))),
    forgeries=st.lists(
        st.tuples(st.integers(0, 50), st.sampled_from(["dtype", "shape", "data_offsets", "new"]), values),
        min_size=1,
        max_size=3,
    ),
    drop_meta=st.booleans(),
)
def test_forged_headers_are_refused_or_load_soundly(index, forgeries, drop_meta):
    net, data = base(index, NAME)
    header, body = split(data)
    names = sorted(key for key in header if key != "__metadata__")
    for which, field, value in forgeries:
        entry = header[names[which % len(names)]]
        entry[field if field != "new" else "extra"] = value
    if drop_meta:
        header.pop("__metadata__")
    text = json.dumps(header).encode()
    loaded = attempt(struct.pack("<Q", len(text)) + text + body, NAME)
    if loaded is not None and not drop_meta:
        assert loaded.sizes == net.sizes
