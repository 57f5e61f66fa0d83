"""Integrity of model files (docs/reliability.md, "Damaged and forged files"): damaged,
truncated and forged files end in one ValueError without allocating out of proportion to the
file; saves are atomic; links never let a write reach another file."""

import errno
import os
import random
import threading
import time
import zipfile

import numpy as np
import psutil
import pytest
import torch
from forging import find, forge, read_payload, write_payload
from tiny import PIPE, conversations

from sklearn_cberl import make_cberl_pipeline, persistence
from sklearn_cberl._files import atomic_write, same_file
from sklearn_cberl.fusion import DJVAE

#: Allowance for the interpreter's own noise (allocator arenas, caches) in memory checks.
SLACK = 8 * 2**20


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    X, y = conversations()
    pipe = make_cberl_pipeline(random_state=0, device="cpu", **PIPE).fit(X, y)
    path = persistence.save(pipe, tmp_path_factory.mktemp("integrity") / "model.cberl")
    persistence.load(path)  # first load: imports and caches, outside any measurement
    return path, X, pipe.predict_proba(X)


class PeakRSS:
    """Peak growth of this process's resident memory while the block runs (sampled every
    millisecond by a thread, plus the start and end)."""

    def __enter__(self):
        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.done.wait(0.001):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc):
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.done.set()
        self.thread.join()
        self.growth = self.peak - self.base
        return False


def load_outcome(path, X, expected):
    """'refused' (a ValueError) or 'same' (loads and predicts exactly as the original);
    anything else fails the test."""
    try:
        restored = persistence.load(path)
    except ValueError as exc:
        assert "\n" not in str(exc)  # one line
        return "refused"
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    return "same"


def members(path):
    """Name -> (offset of the data in the file, size) of each archive member."""
    with zipfile.ZipFile(path) as archive:
        out = {}
        for info in archive.infolist():
            with open(path, "rb") as handle:  # the local header's name and extra lengths
                handle.seek(info.header_offset + 26)
                lengths = handle.read(4)
            skip = 30 + sum(int.from_bytes(lengths[i : i + 2], "little") for i in (0, 2))
            out[info.filename.split("/", 1)[1]] = (info.header_offset + skip, info.file_size)
        return out


def rewrite(path, out, edit):
    """Copy a save archive member by member through ``edit(name, data) -> [(name, data,
    compression)]`` (CRCs recomputed by zipfile: the damage is deliberate)."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            for name, data, compression in edit(info.filename, src.read(info)):
                dst.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out


def refused(path, match):
    with pytest.raises(ValueError, match=match) as info:
        persistence.load(path)
    assert "\n" not in str(info.value)
    return str(info.value)


# ----------------------------------------------------------------------------- damage
def test_fuzz_200_single_byte_flips_and_50_truncations(model, tmp_path):
    """Each damaged copy is refused with a ValueError, or loads a model that predicts exactly
    as the original (a flip in bytes nothing reads: zip padding, timestamps); no other
    exception, and no load grows memory beyond twice the file's size (plus the
    interpreter's noise)."""
    path, X, expected = model
    data = path.read_bytes()
    rng = random.Random(0)
    outcomes, growth = [], []
    damaged = tmp_path / "damaged.cberl"
    cases = [("flip", rng.randrange(len(data)), rng.randrange(8)) for _ in range(200)]
    cases += [("cut", rng.randrange(len(data)), None) for _ in range(50)]
    for kind, position, bit in cases:
        copy = bytearray(data)
        if kind == "flip":
            copy[position] ^= 1 << bit
        else:
            del copy[position:]
        damaged.write_bytes(copy)
        with PeakRSS() as memory:
            outcomes.append((kind, load_outcome(damaged, X, expected)))
        growth.append(memory.growth)
    assert all(o == "refused" for k, o in outcomes if k == "cut")
    flips = [o for k, o in outcomes if k == "flip"]
    assert flips.count("refused") > 150  # most bytes are data the CRCs cover
    assert max(growth) < 2 * len(data) + SLACK


@pytest.mark.parametrize("member", ["data.pkl", "data/0", "data/last", "version"])
def test_a_flipped_byte_inside_any_member_is_refused(model, tmp_path, member):
    """The issue's case: one flipped byte inside a weight tensor loaded silently and changed
    predicted probabilities by up to 0.58. Every member's CRC is now verified."""
    path, _, _ = model
    records = members(path)
    if member == "data/last":
        member = max((n for n in records if n.startswith("data/")), key=lambda n: int(n[5:]))
    start, size = records[member]
    data = bytearray(path.read_bytes())
    data[start + size // 2] ^= 0x10
    (tmp_path / "flipped.cberl").write_bytes(data)
    refused(tmp_path / "flipped.cberl", "damaged")


def test_flips_in_the_archive_structure_are_refused_or_harmless(model, tmp_path):
    """The central directory, the local headers and the end record: every byte of each."""
    path, X, expected = model
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
    directory = data.rfind(b"PK\x01\x02", 0, data.rfind(b"PK\x01\x02") + 1)
    positions = list(range(first.header_offset, first.header_offset + 30))  # a local header
    positions += list(range(len(data) - 22, len(data)))  # the end-of-directory record
    positions += list(range(directory, directory + 46))  # one central directory entry
    outcomes = set()
    for position in positions:
        copy = bytearray(data)
        copy[position] ^= 0xFF
        (tmp_path / "x.cberl").write_bytes(copy)
        outcomes.add(load_outcome(tmp_path / "x.cberl", X, expected))
    assert "refused" in outcomes


@pytest.mark.parametrize("keep", [0, 1, 22, 100, 0.5, -22, -1])
def test_truncated_files_are_refused(model, tmp_path, keep):
    path, _, _ = model
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    (tmp_path / "cut.cberl").write_bytes(data[:n])
    refused(tmp_path / "cut.cberl", "not a valid sklearn-cberl model file")


def test_an_altered_tensor_or_document_without_new_digests_is_refused(model, tmp_path):
    """A file edited and written back by torch.save: the digests recorded at save time no
    longer match (the claims themselves are valid here)."""
    path, _, _ = model
    payload = read_payload(path)
    payload["tensors"]["t0"] = payload["tensors"]["t0"] + 1
    write_payload(payload, tmp_path / "tensor.cberl", recompute=False)
    refused(tmp_path / "tensor.cberl", "does not match the digest")

    def edit(document):
        document["__estimator__"] = document["__estimator__"]  # same class, other param below
        document["params"]["__dict__"].append(["verbose", True])

    forge(path, tmp_path / "json.cberl", edit, recompute=False)
    refused(tmp_path / "json.cberl", "JSON document does not match the digest")
    payload = read_payload(path)
    del payload["sha256"]
    write_payload(payload, tmp_path / "none.cberl", recompute=False)
    refused(tmp_path / "none.cberl", "digests are missing")


# ----------------------------------------------------------------------------- forged claims
def djvae_file(tmp_path):
    X, _ = conversations()
    return persistence.save(DJVAE(n_components=2, max_epochs=1, random_state=0).fit(X),
                            tmp_path / "vae.cberl")  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [
        {"__np__": "|V500000000", "value": 500000000},  # the allocation
        {"__np__": "<c16", "value": 1.0},
        {"__np__": "|O", "value": 1},
        {"__np__": "<M8[ns]", "value": 1},
        {"__np__": "<f8", "value": "1e3"},  # a dtype's value of the wrong JSON type
        {"__np__": "<i8", "value": 1.5},
        {"__np__": ["<f8"], "value": 1.0},
        {"__np__": "<U5", "value": 5},
        {"__ndarray__": "", "dtype": "|V500000000"},
        {"__ndarray__": "", "dtype": "<c16"},
        {"__ndarray__": "", "dtype": "|O"},
        {"__ndarray__": "", "dtype": ">f8"},
        {"__ndarray__": "", "dtype": "<i8"},  # not the dtype of the stored tensor
        {"__objects__": ["a"], "dtype": "<U100000000", "shape": [1]},
        {"__objects__": ["a"] * 4, "dtype": "<U1000000", "shape": [4]},
        {"__objects__": ["a"], "dtype": "|V500000000", "shape": [1]},
        {"__objects__": ["a"], "dtype": "|S500000000", "shape": [1]},
        {"__objects__": [1], "dtype": "<U4", "shape": [1]},
    ],
)
def test_forged_dtypes_are_refused_before_anything_is_allocated(tmp_path, value):
    path = djvae_file(tmp_path)

    def edit(document):
        if "__ndarray__" in value:  # a stored float array, claiming another dtype
            array = find(document, lambda d: d.get("dtype") == "<f8" and "__ndarray__" in d)
            value.update({"__ndarray__": array["__ndarray__"], "shape": array["shape"]})
        document["attrs"]["__dict__"].append(["extra_", value])

    forged = forge(path, tmp_path / "forged.cberl", edit)
    with PeakRSS() as memory:
        refused(forged, "dtype|shape|text array|holds non-text")
    assert memory.growth < 2 * forged.stat().st_size + SLACK


@pytest.mark.parametrize(
    "shape",
    [[10**9], [-1], [1.5], ["3"], [1] * 40, [0], None, [2, 10**18]],
)
@pytest.mark.parametrize("kind", ["__ndarray__", "__objects__"])
def test_forged_shapes_must_match_the_stored_element_count(tmp_path, kind, shape):
    path = djvae_file(tmp_path)

    def edit(document):
        find(document, lambda d: kind in d)["shape"] = shape

    refused(forge(path, tmp_path / "forged.cberl", edit), "claims shape")


def test_a_text_array_may_not_claim_memory_out_of_proportion_to_the_file(tmp_path):
    """A padded text array (dtype wider than its items) loads; one claiming far more bytes
    than the document holds is refused."""
    X, _ = conversations()
    vae = DJVAE(n_components=2, max_epochs=1, random_state=0).fit(X)
    vae.labels_ = np.array(["a", "b"], dtype="<U40")  # padded, as numpy allows
    back = persistence.load(persistence.save(vae, tmp_path / "vae.cberl"))
    assert back.labels_.dtype == np.dtype("<U40") and back.labels_.tolist() == ["a", "b"]

    def edit(document):
        entry = next(v for k, v in document["attrs"]["__dict__"] if k == "labels_")
        entry["dtype"] = "<U10000000"

    refused(forge(tmp_path / "vae.cberl", tmp_path / "big.cberl", edit), "out of proportion")


@pytest.mark.parametrize("where", ["DJVAEModule", "MGNN"])
def test_a_module_config_may_not_describe_more_layers_than_the_file_holds(model, tmp_path, where):
    """The meta device spares the tensors, not the module objects: 20,000 hidden sizes (60 kB
    of JSON) took 12 s and 340 MB to build on it before they could be compared with the
    stored weights. Building stops once it registers more than the file could fill."""
    path, _, _ = model

    def edit(document):
        if where == "MGNN":
            entry = find(document, lambda d: d.get("__estimator__", "").endswith("Classifier"))
            params = entry["torch"]["params"]["__dict__"]
            next(p for p in params if p[0] == "module__attention_hidden")[1] = {
                "__tuple__": [4] * 20000
            }
        else:
            entry = find(document, lambda d: str(d.get("module")).endswith(where))
            entry["config"]["hidden_sizes"] = [4] * 20000

    forged = forge(path, tmp_path / "forged.cberl", edit)
    start = time.perf_counter()
    with PeakRSS() as memory:
        refused(forged, "larger network than the weights")
    assert time.perf_counter() - start < 3
    assert memory.growth < 2 * forged.stat().st_size + SLACK


# ----------------------------------------------------------------------------- the archive
def test_tensor_records_must_match_the_pickled_claims(model, tmp_path):
    path, _, _ = model
    # a record shorter than the pickle claims (the archive itself is consistent)
    short = rewrite(path, tmp_path / "short.cberl", lambda name, data: [
        (name, data[:-4] if name.endswith("/data/0") else data, zipfile.ZIP_STORED)
    ])  # fmt: skip
    refused(short, "holds .* bytes, but the pickle claims")
    payload = read_payload(path)
    key = next(k for k, t in payload["tensors"].items() if t.numel() > 2)
    # a view: the record holds more than the tensor covers
    payload["tensors"][key] = payload["tensors"][key].reshape(-1)[1:]
    refused(write_payload(payload, tmp_path / "view.cberl"), "does not cover")
    # two tensors on one record
    payload = read_payload(path)
    other = next(k for k in payload["tensors"] if k != key)
    payload["tensors"][other] = payload["tensors"][key]
    refused(write_payload(payload, tmp_path / "shared.cberl"), "backs more than one tensor")


@pytest.mark.parametrize(
    "edit, match",
    [
        # memo index 2**23: the C unpickler would grow its memo table to 128 MiB at once
        (lambda pkl: pkl.replace(b"}q\x00(", b"}r" + (2**23).to_bytes(4, "little") + b"(", 1),
         "memo index"),
        # the JSON string claiming 2 GiB
        (lambda pkl: pkl.replace(b"X\x04\x00\x00\x00json", b"X\xff\xff\xff\x7fjson", 1),
         "malformed"),
    ],
)  # fmt: skip
def test_the_pickle_is_parsed_before_it_can_make_the_unpickler_allocate(
    model, tmp_path, edit, match
):
    path, _, _ = model

    def change(name, data):
        if name.endswith("data.pkl"):
            changed = edit(data)
            assert changed != data
            data = changed
        return [(name, data, zipfile.ZIP_STORED)]

    forged = rewrite(path, tmp_path / "forged.cberl", change)
    with PeakRSS() as memory:
        refused(forged, match)
    assert memory.growth < 2 * forged.stat().st_size + SLACK


@pytest.mark.parametrize(
    "replacement, match",
    [
        (lambda t: torch.nn.Parameter(t), "refers to torch._utils._rebuild_parameter"),
        (lambda t: t.to(torch.complex64), "refers to torch.ComplexFloatStorage"),
        (lambda t: t.to(torch.bfloat16), "refers to torch.BFloat16Storage"),
        (lambda t: torch.nn.Linear(2, 2), "refers to torch.nn"),
        (lambda t: t.numpy(), "refers to numpy"),
    ],
)
def test_the_pickle_may_only_hold_plain_tensors(model, tmp_path, replacement, match):
    path, _, _ = model
    payload = read_payload(path)
    payload["tensors"]["t0"] = replacement(payload["tensors"]["t0"])
    torch.save(payload, tmp_path / "odd.cberl")
    refused(tmp_path / "odd.cberl", match)


def test_compressed_members_and_decompression_bombs_are_refused_unread(model, tmp_path):
    path, _, _ = model
    deflated = rewrite(path, tmp_path / "deflated.cberl",
                       lambda name, data: [(name, data, zipfile.ZIP_DEFLATED)])  # fmt: skip
    refused(deflated, "compressed")
    bomb = rewrite(path, tmp_path / "bomb.cberl", lambda name, data: [
        (name, data, zipfile.ZIP_STORED),
        *([(name.replace("data.pkl", "zeros"), bytes(300 * 2**20), zipfile.ZIP_DEFLATED)]
          if name.endswith("data.pkl") else []),
    ])  # fmt: skip
    assert bomb.stat().st_size < 2 * 2**20
    with PeakRSS() as memory:
        refused(bomb, "compressed")
    assert memory.growth < 2 * bomb.stat().st_size + SLACK
    with pytest.warns(UserWarning, match="Duplicate name"):  # zipfile's own, while forging
        duplicate = rewrite(path, tmp_path / "duplicate.cberl", lambda name, data: [
            (name, data, zipfile.ZIP_STORED)
        ] * (2 if name.endswith("data.pkl") else 1))  # fmt: skip
    refused(duplicate, "duplicate")


# ----------------------------------------------------------------------------- paths, writes
def test_load_and_save_name_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="is a directory, not a model file"):
        persistence.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="No model file"):
        persistence.load(tmp_path / "missing.cberl")
    missing = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError, match=f"no such directory {missing}") as info:
        persistence.save(DJVAE(), missing / "model.cberl")
    assert info.value.filename == str(missing)
    (tmp_path / "dir.cberl").mkdir()
    with pytest.raises(IsADirectoryError):
        persistence.save(DJVAE(), tmp_path / "dir.cberl")


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     KeyboardInterrupt()])  # fmt: skip
def test_a_save_that_fails_midway_leaves_the_previous_file_intact(tmp_path, monkeypatch, failure):
    path = persistence.save(DJVAE(n_components=3), tmp_path / "model.cberl")
    before = path.read_bytes()

    def partial_write(payload, handle):  # a disk that fills up after some bytes
        handle.write(b"PK\x03\x04" + bytes(1000))
        raise failure

    monkeypatch.setattr(persistence.torch, "save", partial_write)
    with pytest.raises(type(failure)):
        persistence.save(DJVAE(n_components=5), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.cberl"]  # no temporary file
    assert persistence.load(path).n_components == 3


def test_saving_over_a_link_never_writes_into_another_file(tmp_path):
    first = persistence.save(DJVAE(n_components=3), tmp_path / "first.cberl")
    before = first.read_bytes()
    os.link(first, tmp_path / "hard.cberl")
    persistence.save(DJVAE(n_components=5), tmp_path / "hard.cberl")
    assert first.read_bytes() == before  # the other name keeps its content
    assert persistence.load(tmp_path / "hard.cberl").n_components == 5
    (tmp_path / "soft.cberl").symlink_to(first)
    persistence.save(DJVAE(n_components=7), tmp_path / "soft.cberl")
    assert (tmp_path / "soft.cberl").is_symlink()  # the link is kept, its target replaced
    assert persistence.load(first).n_components == 7


def test_atomic_write_and_same_file(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write(target, lambda h: h.write("one"), text=True)
    os.chmod(target, 0o640)
    with pytest.raises(RuntimeError, match="boom"):
        atomic_write(target, lambda h: (h.write("partial"), (_ for _ in ()).throw(
            RuntimeError("boom"))), text=True)  # fmt: skip
    assert target.read_text() == "one" and len(list(tmp_path.iterdir())) == 1
    atomic_write(target, lambda h: h.write(b"two"))
    assert target.read_bytes() == b"two"
    assert (target.stat().st_mode & 0o777) == 0o640  # the replaced file's permissions kept
    os.link(target, tmp_path / "hard.txt")
    (tmp_path / "soft.txt").symlink_to(target)
    assert same_file(target, tmp_path / "hard.txt") and same_file(tmp_path / "soft.txt", target)
    assert not same_file(target, tmp_path / "missing.txt")
    assert not same_file(target, tmp_path)


def test_save_refuses_what_load_would_refuse(tmp_path):
    vae = DJVAE()
    vae.extra_ = torch.zeros(2, dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="extra_.*bfloat16"):
        persistence.save(vae, tmp_path / "x.cberl")
    vae.extra_ = np.zeros(2, dtype=np.complex64)
    with pytest.raises(TypeError, match="extra_.*complex64"):
        persistence.save(vae, tmp_path / "x.cberl")
    assert not any(tmp_path.iterdir())  # nothing written, not even a temporary file
