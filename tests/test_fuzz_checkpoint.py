"""Fuzzing `bpgpu.load`: damaged and forged model files, built from good ones saved by `Network.save`.

Whatever the file, `load` either returns a sound network (only for a file that is still valid) or
raises `ValueError` starting with the file's name, within `bounded` time and memory; nothing else.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import json

import numpy as np
from forged_zip import forge, members_of, npy, npy_of, replaced
from fuzz_models import BASES, attempt, base, edits, same
from fuzzing import edited, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

BYTE_EXAMPLES = 300
NPY_EXAMPLES = 300
ZIP_EXAMPLES = 300
METADATA_EXAMPLES = 300


# ---- 1. Bytes flipped, cut, inserted or deleted anywhere ---------------------------------------------


@fuzz_settings(BYTE_EXAMPLES)
@given(st.sampled_from(range(len(BASES))), st.lists(edits, min_size=1, max_size=3))
def test_damaged_bytes_are_refused_or_load_the_saved_network(index, changes):
    original, data = base(index)
    for change in changes:
        data = edited(data, change)
    loaded = attempt(data)
    # Every entry is CRC-checked: what still loads holds the saved parameters, bit for bit.
    assert loaded is None or same(loaded, original)


# ---- 2. Forged .npy headers: shape, descr, fortran_order, version, length ----------------------------

literals = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | st.binary(max_size=4),
    lambda inner: st.tuples(inner) | st.lists(inner, max_size=3).map(tuple) | st.lists(inner, max_size=3),
    max_leaves=6,
)
snippets = st.sampled_from(
    [
        "w4,)", "(True,)", "(-1,)", "(0,)", "()", "(2**70,)", "(1 << 62, 1 << 62)", "(9223372036854775808,)",
        "'<f8'", "'>f4'", "'<f4'", "'float32'", "'O'", "'|u1'", "'a'", "'(2,)f4'", "'V0'", "'<U3'", "b'<f8'",
        "True", "0", "1e999", "1j", "'\\d'", "'\\x00'", "(" * 300, "[" * 50, "{'a': 1}", "9" * 5000,
    ]
)  # fmt: skip
header_values = st.one_of(snippets, literals.map(repr), st.text(max_size=12))


@st.composite
def npy_forgeries(draw, data: bytes) -> bytes:
    """`data` (an .npy file as numpy.savez writes it, version 1.0) with one part replaced."""
    length = int.from_bytes(data[8:10], "little")
    values = {key: repr(value) for key, value in ast.literal_eval(data[10 : 10 + length].decode()).items()}
    body = data[10 + length :]
    part = draw(st.sampled_from([*values, "text", "version", "length", "data"]))
    if part in values:
        values[part] = draw(header_values)
    if part == "data":
        body = draw(st.binary(max_size=len(body) + 16))
    text = "{" + ", ".join(f"'{key}': {value}" for key, value in values.items()) + ", }"
    if part == "text":
        text = draw(st.text(max_size=80) | header_values)
    out = npy(text, body, (1, 0) if max(text, default=" ") < "\u0100" else (3, 0))
    if part == "version":
        out = out[:6] + bytes(draw(st.tuples(st.integers(0, 255), st.integers(0, 255)))) + out[8:]
    if part == "length":
        out = out[:8] + draw(st.integers(0, 65535)).to_bytes(2, "little") + out[10:]
    return out


@fuzz_settings(NPY_EXAMPLES)
@given(st.sampled_from(range(len(BASES))), st.data())
def test_forged_npy_headers_are_refused_or_load_a_sound_network(index, data):
    members = members_of(base(index)[1])
    target = data.draw(st.sampled_from([m.name for m in members]))
    old = next(m.data for m in members if m.name == target)
    attempt(forge(replaced(members, target, data=data.draw(npy_forgeries(old)))))


# ---- 3. Forged zip structure: flags, versions, methods, sizes, offsets, names ------------------------

sizes = st.one_of(
    st.sampled_from([0, 1, 2**31, 2**32 - 2, 2**32 - 1, 2**32, 2**40, 2**63, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2000),
)
member_changes = st.fixed_dictionaries(
    {},
    optional={
        "flags": st.sampled_from([1, 1 << 3, 1 << 5, 1 << 6, 1 << 11, 1 << 13]) | st.integers(0, 0xFFFF),
        "version": st.sampled_from([10, 20, 45, 63, 64, 255]) | st.integers(0, 255),
        "method": st.sampled_from([0, 8, 12, 14, 99]) | st.integers(0, 0xFFFF),
        "size": sizes,
        "offset": sizes,
        "local": st.fixed_dictionaries(
            {},
            optional={
                "flags": st.integers(0, 0xFFFF),
                "version": st.integers(0, 255),
                "method": st.sampled_from([0, 8, 99]),
            },
        ),
        "name": st.sampled_from(["weight_0", "weight_0.npy ", "bias_9.npy", "metadata.npy", "x/bias_0.npy"])
        | st.text(st.characters(codec="ascii", exclude_characters="\0"), max_size=14),
    },
)


@fuzz_settings(ZIP_EXAMPLES)
@given(st.sampled_from(range(len(BASES))), st.data())
def test_forged_zip_structure_is_refused_or_loads_a_sound_network(index, data):
    members = members_of(base(index)[1])
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(members) - 1))
        action = data.draw(st.sampled_from(["change", "change", "change", "duplicate", "drop", "swap"]))
        if action == "change":
            members[at] = dataclasses.replace(members[at], **data.draw(member_changes))
        elif action == "duplicate":
            members.insert(data.draw(st.integers(0, len(members))), members[at])
        elif action == "drop" and len(members) > 1:
            del members[at]
        elif action == "swap":
            members[at], members[-1] = members[-1], members[at]
    attempt(forge(members))


# ---- 4. Forged metadata: every field given random values, deep nesting, huge integers ----------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
plausible = st.sampled_from(
    [
        "sigmoid",
        "tanh",
        "softmax",
        "float32",
        "float64",
        "cross_entropy",
        "normal",
        [3, 4, 2],
        [2, 3],
        0,
        1,
        2**128,
    ]
)
fields = ("format", "version", "bpgpu_version", "sizes", "activation", "output_activation", "cost", "init",
          "dtype", "seed", "shuffle_state")  # fmt: skip
raw_texts = st.one_of(
    st.integers(4000, 6000).map(lambda n: "1" * n),
    st.integers(10, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(10, 3000).map(lambda n: '{"a": ' * n + "0" + "}" * n),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", '"\\ud800"', "{", "", "\ufeff{}"]),
)


@st.composite
def metadata_forgeries(draw, text: str) -> bytes:
    """The metadata JSON `text` with up to three fields changed, or garbage."""
    metadata, raws = json.loads(text), {}
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(fields))
        choice = draw(st.sampled_from(["value", "plausible", "raw", "delete", "garbage"]))
        if choice == "delete":
            metadata.pop(field, None)
        elif choice == "garbage":
            return draw(st.binary(max_size=64))
        elif choice == "raw":  # text that json.dumps cannot produce goes in through a placeholder
            metadata[field] = token = f"@raw{len(raws)}@"
            raws[token] = draw(raw_texts)
        else:
            metadata[field] = draw(json_values if choice == "value" else plausible)
    encoded = json.dumps(metadata)
    for token, raw in raws.items():
        encoded = encoded.replace(json.dumps(token), raw)
    return encoded.encode()


@fuzz_settings(METADATA_EXAMPLES)
@given(st.sampled_from(range(len(BASES))), st.data())
def test_forged_metadata_is_refused_or_loads_a_sound_network(index, data):
    members = members_of(base(index)[1])
    text = np.lib.format.read_array(io.BytesIO(members[0].data)).tobytes().decode()
    raw = np.frombuffer(data.draw(metadata_forgeries(text)), dtype=np.uint8)
    attempt(forge(replaced(members, "metadata.npy", data=npy_of(raw))))
