#!/usr/bin/python3
"""Generates the malformed .npy and .safetensors samples under
tests/malformed/{npy,safetensors}/ (no numpy needed).

Every file written here must be rejected by the loaders with NESIM_EINVAL
and a message containing the fragment paired with it (listed in
tensors_expected.txt); tests/test_tensor.c loads each one. Files found by fuzzing (crash-*, etc.)
live next to these and are kept, not regenerated.
Run from the repository root:  /usr/bin/python3 tests/malformed/make_tensors.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def npy(header, data=b"", major=1, minor=0, hlen=None, pad=True):
    """An .npy image: header text padded like numpy (64-byte aligned)."""
    h = header.encode("latin1")
    pre = 10 if major == 1 else 12
    if pad:
        total = (pre + len(h) + 1 + 63) // 64 * 64
        h = h + b" " * (total - pre - len(h) - 1) + b"\n"
    n = len(h) if hlen is None else hlen
    size = struct.pack("<H", n) if major == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes([major, minor]) + size + h + data


def d(descr="'<f4'", order="False", shape="(3,)"):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, order, shape)


F3 = struct.pack("<3f", 1.0, 2.0, 3.0)

NPY = {
    "empty.npy": (b"", 'truncated'),
    "short_preamble.npy": (b"\x93NUM", 'truncated'),
    "v2_short_preamble.npy": (b"\x93NUMPY\x02\x00\x10\x00", 'truncated'),
    "bad_magic.npy": (b"\x93NUMPZ" + npy(d(), F3)[6:], 'bad magic'),
    "bad_magic_text.npy": (b"PK\x03\x04 this is a zip file, not npy....", 'bad magic'),
    "version_4_0.npy": (npy(d(), F3, major=4), 'version 4.0'),
    "version_1_1.npy": (npy(d(), F3, minor=1), 'version 1.1'),
    "version_0_0.npy": (npy(d(), F3, major=0), 'version 0.0'),
    "big_endian.npy": (npy(d("'>f4'"), F3), 'big-endian'),
    "native_order.npy": (npy(d("'=f4'"), F3), 'byte order'),
    "dtype_timedelta.npy": (npy(d("'<m8'"), b"\0" * 24), "unsupported dtype '<m8'"),
    "dtype_c8.npy": (npy(d("'<c8'"), b"\0" * 24), "unsupported dtype '<c8'"),
    "dtype_longdouble.npy": (npy(d("'<f16'"), b"\0" * 48), "unsupported dtype '<f16'"),
    "dtype_object.npy": (npy(d("'|O'"), b"\0" * 24), "unsupported dtype '|O'"),
    "dtype_unicode.npy": (npy(d("'<U4'"), b"\0" * 48), "unsupported dtype '<U4'"),
    "dtype_structured.npy": (npy(d("[('a', '<f4')]"), F3), 'structured'),
    "dtype_long_garbage.npy": (npy(d("'" + "x" * 200 + "'"), F3), 'unsupported dtype'),
    "fortran_order_int.npy": (npy(d(order="1", shape="(3,)"), F3), 'True or False'),
    "fortran_lowercase.npy": (npy(d(order="false"), F3), 'True or False'),
    "header_len_beyond.npy": (npy(d(), F3, hlen=60000), 'header length 60000 beyond'),
    "header_len_beyond_v2.npy": (npy(d(), F3, major=2, hlen=0xFFFFFFFF), 'header length 4294967295 beyond'),
    "data_short.npy": (npy(d(), F3[:10]), 'expected 12 bytes, found 10'),
    "data_long.npy": (npy(d(), F3 + b"\0\0\0\0"), 'expected 12 bytes, found 16'),
    "data_missing.npy": (npy(d(shape="(1000, 1000)")), 'expected 4000000 bytes, found 0'),
    "negative_dim.npy": (npy(d(shape="(-3,)"), F3), 'negative'),
    "product_overflow.npy": (npy(d(shape="(4294967296, 4294967296, 16)"), F3), 'overflow'),
    "bytes_overflow.npy": (npy(d(shape="(4611686018427387904, 2)"), F3), 'overflow'),
    "dim_beyond_int64.npy": (npy(d(shape="(99999999999999999999,)"), F3), 'exceeds int64'),
    "too_many_dims.npy": (npy(d(shape="(1, 1, 1, 1, 1, 1, 1, 1, 3)"), F3), 'too many dimensions'),
    "shape_not_tuple.npy": (npy(d(shape="(3)"), F3), 'trailing comma'),
    "shape_list.npy": (npy(d(shape="[3]"), F3), 'not a tuple'),
    "shape_float.npy": (npy(d(shape="(3.0,)"), F3), 'in shape'),
    "shape_empty_comma.npy": (npy(d(shape="(,)"), F3), 'integers'),
    "shape_unclosed.npy": (npy(d(shape="(3,"), F3), 'integers'),
    "missing_shape.npy": (npy("{'descr': '<f4', 'fortran_order': False, }", F3), 'missing key'),
    "extra_key.npy": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1, }", F3), "key 'x'"),
    "repeated_key.npy": (npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", F3), "repeated key 'descr'"),
    "unterminated_string.npy": (npy("{'descr': '<f4", F3), 'string'),
    "trailing_garbage.npy": (npy(d() + " junk", F3), 'trailing'),
    "not_a_dict.npy": (npy("['<f4', False, (3,)]", F3), "expected '{'"),
    "empty_header.npy": (npy("", F3, pad=False), "expected '{'"),
    "escape_in_string.npy": (npy(d("'<f\\4'"), F3), 'escape'),
    "nul_in_header.npy": (npy("{'descr': '<f4'\0, 'fortran_order': False, 'shape': (3,), }", F3), "expected ','"),
}


def st(header, data=b"", hlen=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(h) if hlen is None else hlen
    return struct.pack("<Q", n) + h + data


def ent(dtype="F32", shape=(3,), offsets=(0, 12)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


ST = {
    "empty.safetensors": (b"", 'truncated'),
    "short.safetensors": (b"\x10\x00\x00", 'truncated'),
    "header_len_beyond.safetensors": (st({"a": ent()}, F3, hlen=5000), 'header length 5000 beyond'),
    "header_len_absurd.safetensors": (st({"a": ent()}, F3, hlen=1 << 63), 'absurd'),
    "header_len_max.safetensors": (st({"a": ent()}, F3, hlen=(1 << 64) - 1), 'absurd'),
    "json_syntax.safetensors": (st(b'{"a": {"dtype": "F32",, }}', F3), 'JSON error at line 1 column'),
    "json_truncated.safetensors": (st(b'{"a": {"dtype": "F32"', F3), 'JSON error'),
    "json_array.safetensors": (st(b"[1, 2, 3]", F3), 'not an object'),
    "json_empty.safetensors": (st(b"", F3), 'JSON error'),
    "json_bad_utf8.safetensors": (st(b'{"\xff\xfe": 1}', F3), 'JSON error'),
    "json_nul.safetensors": (st(b'{"a\\u0000b": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}', F3), 'NUL'),
    "json_duplicate.safetensors": (st(b'{"a": ' + json.dumps(ent()).encode() + b', "a": ' + json.dumps(ent()).encode() + b"}", F3), 'duplicate'),
    "json_huge_int.safetensors": (st(b'{"a": {"dtype": "F32", "shape": [99999999999999999999], "data_offsets": [0, 12]}}', F3), 'too big integer'),
    "entry_not_object.safetensors": (st({"a": [1, 2]}, F3), 'not an object'),
    "dtype_unknown.safetensors": (st({"a": ent("C64", (3,), (0, 24))}, F3 * 2), "unsupported dtype 'C64'"),
    "dtype_fp8.safetensors": (st({"a": ent("F8_E4M3", (3,), (0, 3))}, F3), "unsupported dtype 'F8_E4M3'"),
    "dtype_lowercase.safetensors": (st({"a": ent("f32")}, F3), "unsupported dtype 'f32'"),
    "dtype_missing.safetensors": (st({"a": {"shape": [3], "data_offsets": [0, 12]}}, F3), 'dtype'),
    "dtype_number.safetensors": (st({"a": {"dtype": 7, "shape": [3], "data_offsets": [0, 12]}}, F3), 'dtype'),
    "shape_float.safetensors": (st({"a": ent(shape=(1.5, 2))}, F3), 'integers'),
    "shape_string.safetensors": (st({"a": ent(shape=("3",))}, F3), 'integers'),
    "shape_negative.safetensors": (st({"a": ent(shape=(-3,))}, F3), 'integers'),
    "shape_not_array.safetensors": (st({"a": {"dtype": "F32", "shape": 3, "data_offsets": [0, 12]}}, F3), 'shape'),
    "shape_overflow.safetensors": (st({"a": ent(shape=(1 << 62, 1 << 62, 0))}, F3), 'overflow'),
    "shape_too_many_dims.safetensors": (st({"a": ent(shape=(1,) * 8 + (3,))}, F3), 'too many dimensions'),
    "offsets_out_of_range.safetensors": (st({"a": ent(offsets=(0, 16))}, F3), 'out of range'),
    "offsets_begin_gt_end.safetensors": (st({"a": ent(offsets=(12, 0))}, F3), 'begin 12 > end 0'),
    "offsets_size_mismatch.safetensors": (st({"a": ent(offsets=(0, 8))}, F3), 'expected 12 bytes'),
    "offsets_three.safetensors": (st({"a": ent(offsets=(0, 12, 12))}, F3), 'data_offsets'),
    "offsets_negative.safetensors": (st({"a": ent(offsets=(-4, 8))}, F3), 'data_offsets'),
    "offsets_huge.safetensors": (st({"a": ent(offsets=(1 << 62, (1 << 62) + 12))}, F3), 'out of range'),
    "extra_key.safetensors": (st({"a": dict(ent(), extra=1)}, F3), "key 'extra'"),
    "metadata_not_object.safetensors": (st({"__metadata__": "x", "a": ent()}, F3), '__metadata__'),
    "metadata_not_string.safetensors": (st({"__metadata__": {"k": 1}, "a": ent()}, F3), '__metadata__'),
    "second_entry_bad.safetensors": (st({"a": ent(), "b": ent("I8", (4,), (12, 17))}, F3 + b"\1\2\3\4\5"), "tensor 'b'"),
}


def write(sub, files, manifest):
    out = os.path.join(HERE, sub)
    os.makedirs(out, exist_ok=True)
    for name, (data, needle) in sorted(files.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        manifest.write("%s/%s\t%s\n" % (sub, name, needle))
    print("%s: %d files" % (sub, len(files)))


if __name__ == "__main__":
    # The manifest (path <TAB> fragment the error message must contain) lets
    # the test check each sample fails for the reason its name says.
    with open(os.path.join(HERE, "tensors_expected.txt"), "w") as m:
        write("npy", NPY, m)
        write("safetensors", ST, m)
