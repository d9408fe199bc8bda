"""Object storage: LocalStore on a temp dir, S3Store against a real moto S3 server (no mocks of
our code; the minio client talks HTTP to moto's server mode)."""

from __future__ import annotations

import hashlib
import os
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from minio import Minio
from minio.versioningconfig import ENABLED, VersioningConfig

from beatframe.infra import storage
from beatframe.infra.errors import BadInputError
from beatframe.infra.settings import Settings
from beatframe.infra.storage import (
    LocalStore,
    S3Store,
    StoredObject,
    get_store,
    parse_endpoint,
    validate_key,
)

HOSTILE_KEYS = [
    "../x",
    "/etc/passwd",
    "a/../../b",
    "a\\b",
    "a\x00b",
    "",
    "..",
    ".",
    "a/./b",
    "a//b",
    "a/",
    "a\nb",
    "a b",
    "caf\u00e9",
    "x" * 513,
]


# ---------------------------------------------------------------------------------- fixtures


def _client(endpoint: str) -> Minio:
    return Minio(
        endpoint, access_key="testing", secret_key="testing", secure=False, region="us-east-1"
    )


@pytest.fixture
def s3_store(moto_endpoint) -> S3Store:
    # A fresh bucket per test (moto's state lives for the whole session); created by the store.
    return S3Store(_client(moto_endpoint), f"bf-test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def local_store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "objects")


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, moto_endpoint):
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    return S3Store(_client(moto_endpoint), f"bf-test-{uuid.uuid4().hex[:12]}")


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------- both backends


def test_round_trip(store, tmp_path):
    data = os.urandom(100_000)
    src = _write(tmp_path / "in" / "canvas.mp4", data)
    key = "cnv_123/canvas.mp4"

    assert not store.exists(key)
    assert store.stat(key) is None

    rec = store.put_file(key, src, content_type="video/mp4", metadata={"role": "canvas"})
    assert isinstance(rec, StoredObject)
    assert rec == StoredObject(key, store.uri(key), _sha(data), len(data), "video/mp4")

    assert store.exists(key)
    st = store.stat(key)
    assert st is not None
    assert (st.key, st.sha256, st.bytes) == (key, _sha(data), len(data))
    assert st.content_type == "video/mp4"

    out = store.get_file(key, tmp_path / "out" / "copy.mp4")
    assert out == tmp_path / "out" / "copy.mp4"
    assert out.read_bytes() == data
    assert _files(tmp_path / "out") == ["copy.mp4"]  # no temp litter beside the download

    store.delete(key)
    assert not store.exists(key)
    assert store.stat(key) is None
    store.delete(key)  # deleting twice is fine
    with pytest.raises(FileNotFoundError):
        store.get_file(key, tmp_path / "out" / "gone.mp4")
    assert not (tmp_path / "out" / "gone.mp4").exists()


def test_overwrite_with_different_content(store, tmp_path):
    key = "run/manifest.json"
    ctype = "application/json"
    first = store.put_file(key, _write(tmp_path / "a.json", b'{"v": 1}'), content_type=ctype)
    second = store.put_file(key, _write(tmp_path / "b.json", b'{"v": 22}'), content_type=ctype)
    assert first.sha256 != second.sha256
    assert second.sha256 == _sha(b'{"v": 22}') and second.bytes == 9
    assert store.stat(key).sha256 == second.sha256
    assert store.get_file(key, tmp_path / "got.json").read_bytes() == b'{"v": 22}'


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_rejected(store, tmp_path, key):
    src = _write(tmp_path / "f.bin", b"payload")
    with pytest.raises(BadInputError):
        store.put_file(key, src, content_type="application/octet-stream")
    for op in (store.exists, store.stat, store.delete, store.uri):
        with pytest.raises(BadInputError):
            op(key)
    with pytest.raises(BadInputError):
        store.get_file(key, tmp_path / "dest.bin")
    with pytest.raises(BadInputError):
        store.presigned_url(key, expires=timedelta(minutes=1))
    # Nothing was written anywhere under tmp_path except the source.
    assert _files(tmp_path) == ["f.bin"]


# ---------------------------------------------------------------------------------- key rules


def test_validate_key_messages_and_accepts_normal_keys():
    for good in ["a", "a/b/c.mp4", "cnv_01H/canvas.jpg", "x" * 512, ".hidden", "a-b_c.d/e"]:
        assert validate_key(good) == good
    with pytest.raises(BadInputError, match=r"\.\./x"):
        validate_key("../x")
    with pytest.raises(BadInputError, match="not a string"):
        validate_key(None)  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match=r"\\x00"):
        validate_key("a\x00b")


# ---------------------------------------------------------------------------------- local


def test_local_layout_and_uri(local_store, tmp_path):
    src = _write(tmp_path / "p.jpg", b"jpegbytes")
    rec = local_store.put_file("cnv_1/canvas.jpg", src, content_type="image/jpeg")
    path = tmp_path / "objects" / "cnv_1" / "canvas.jpg"
    assert path.read_bytes() == b"jpegbytes"
    assert rec.uri == path.resolve().as_uri() and rec.uri.startswith("file:///")
    assert local_store.stat("cnv_1/canvas.jpg").content_type == "image/jpeg"  # guessed from the key
    url = local_store.presigned_url("cnv_1/canvas.jpg", expires=timedelta(hours=1))
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"jpegbytes"


def test_local_idempotent_reput_does_not_rewrite(local_store, tmp_path):
    data = os.urandom(50_000)
    src = _write(tmp_path / "v.mp4", data)
    first = local_store.put_file("k/v.mp4", src, content_type="video/mp4")
    path = tmp_path / "objects" / "k" / "v.mp4"
    before = path.stat()
    # A retry from another copy of the same bytes: nothing is rewritten (same inode, same mtime).
    retry = _write(tmp_path / "retry.mp4", data)
    again = local_store.put_file("k/v.mp4", retry, content_type="video/mp4")
    after = path.stat()
    assert again == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _files(tmp_path / "objects") == ["k/v.mp4"]


def test_local_failed_copy_leaves_no_partial_object(local_store, tmp_path, monkeypatch):
    key = "run/video.mp4"
    old = b"old complete object"
    local_store.put_file(key, _write(tmp_path / "old.mp4", old), content_type="video/mp4")
    new_src = _write(tmp_path / "new.mp4", os.urandom(300_000))

    def broken_copy(fsrc, fdst, length=0):
        fdst.write(fsrc.read(1000))  # some bytes reach the temp file …
        raise OSError("disk on fire")  # … then the copy dies

    monkeypatch.setattr(storage.shutil, "copyfileobj", broken_copy)
    with pytest.raises(OSError, match="disk on fire"):
        local_store.put_file(key, new_src, content_type="video/mp4")  # overwrite fails
    with pytest.raises(OSError, match="disk on fire"):
        local_store.put_file("run/fresh.mp4", new_src, content_type="video/mp4")  # new key fails
    monkeypatch.undo()

    objects = tmp_path / "objects"
    assert (objects / "run" / "video.mp4").read_bytes() == old  # old object intact
    assert not (objects / "run" / "fresh.mp4").exists()  # no partial new object
    assert _files(objects) == ["run/video.mp4"]  # and no temp litter
    assert local_store.stat("run/fresh.mp4") is None


def test_local_missing_source_creates_nothing(local_store, tmp_path):
    with pytest.raises(FileNotFoundError):
        local_store.put_file("a/b.mp4", tmp_path / "vanished.mp4", content_type="video/mp4")
    assert not (tmp_path / "objects").exists() or _files(tmp_path / "objects") == []


def test_local_symlink_inside_root_cannot_escape(local_store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BadInputError):
        local_store.put_file("link/x.bin", _write(tmp_path / "s.bin", b"x"), content_type="a/b")
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------------------------- S3 (moto)


def test_s3_creates_bucket_and_records_sha_metadata(s3_store, tmp_path):
    assert not s3_store.client.bucket_exists(s3_store.bucket)
    data = b"hello canvas"
    rec = s3_store.put_file("a/b.mp4", _write(tmp_path / "x", data), content_type="video/mp4",
                            metadata={"role": "canvas"})
    assert s3_store.client.bucket_exists(s3_store.bucket)
    assert rec.uri == f"s3://{s3_store.bucket}/a/b.mp4"
    raw = s3_store.client.stat_object(s3_store.bucket, "a/b.mp4")
    assert raw.metadata["x-amz-meta-sha256"] == _sha(data)
    assert raw.metadata["x-amz-meta-role"] == "canvas"
    assert raw.content_type == "video/mp4"


def test_s3_idempotent_reput_writes_no_second_version(s3_store, tmp_path):
    s3_store.ensure_bucket()
    # With versioning on, every PUT would leave a version behind: count them on the server.
    s3_store.client.set_bucket_versioning(s3_store.bucket, VersioningConfig(ENABLED))
    data = os.urandom(20_000)
    first = s3_store.put_file("r/v.mp4", _write(tmp_path / "a", data), content_type="video/mp4")
    etag = s3_store.client.stat_object(s3_store.bucket, "r/v.mp4").etag
    again = s3_store.put_file("r/v.mp4", _write(tmp_path / "b", data), content_type="video/mp4")
    assert again == first
    assert s3_store.client.stat_object(s3_store.bucket, "r/v.mp4").etag == etag

    def versions():
        client = s3_store.client
        return list(client.list_objects(s3_store.bucket, prefix="r/", include_version=True))

    assert len(versions()) == 1
    s3_store.put_file("r/v.mp4", _write(tmp_path / "c", data + b"!"), content_type="video/mp4")
    assert len(versions()) == 2  # different content is written


def test_s3_foreign_object_without_sha_is_overwritten(s3_store, tmp_path):
    s3_store.ensure_bucket()
    src = _write(tmp_path / "x", b"same bytes")
    s3_store.client.fput_object(s3_store.bucket, "f/x.bin", str(src))  # no sha256 metadata
    assert s3_store.stat("f/x.bin").sha256 is None
    rec = s3_store.put_file("f/x.bin", src, content_type="application/octet-stream")
    assert s3_store.stat("f/x.bin").sha256 == rec.sha256 == _sha(b"same bytes")


def test_s3_presigned_url_fetchable_over_http(s3_store, tmp_path):
    data = os.urandom(4096)
    s3_store.put_file("p/poster.jpg", _write(tmp_path / "p.jpg", data), content_type="image/jpeg")
    url = s3_store.presigned_url("p/poster.jpg", expires=timedelta(minutes=5))
    assert url.startswith("http://127.0.0.1:") and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == data
    with pytest.raises(ValueError):
        s3_store.presigned_url("p/poster.jpg", expires=timedelta(days=8))


def test_s3_missing_bucket_reads_as_missing(s3_store):
    assert s3_store.stat("nope/x") is None
    assert not s3_store.exists("nope/x")


# ---------------------------------------------------------------------------------- get_store


def test_get_store_local_without_endpoint(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", s3_endpoint=None)
    store = get_store(settings)
    assert isinstance(store, LocalStore)
    assert store.root == (tmp_path / "data" / "objects").resolve()


@pytest.mark.parametrize("form", ["url", "hostport"])
def test_get_store_s3_from_settings(moto_endpoint, tmp_path, form):
    bucket = f"bf-gs-{uuid.uuid4().hex[:12]}"
    endpoint = f"http://{moto_endpoint}" if form == "url" else moto_endpoint
    settings = Settings(
        data_dir=tmp_path, s3_endpoint=endpoint, s3_access_key="k", s3_secret_key="s",
        s3_bucket=bucket, s3_secure=form == "url",  # the URL's http:// must win over s3_secure
        s3_region="us-east-1",
    )
    store = get_store(settings)
    assert isinstance(store, S3Store) and store.bucket == bucket
    src = _write(tmp_path / "y.txt", b"via settings")
    rec = store.put_file("x/y.txt", src, content_type="text/plain")
    assert rec.uri == f"s3://{bucket}/x/y.txt"
    assert store.get_file("x/y.txt", tmp_path / "back.txt").read_bytes() == b"via settings"


def test_parse_endpoint():
    assert parse_endpoint("minio:9000", True) == ("minio:9000", True)
    assert parse_endpoint("minio:9000", False) == ("minio:9000", False)
    assert parse_endpoint("http://minio:9000", True) == ("minio:9000", False)
    assert parse_endpoint("https://s3.example.com/", False) == ("s3.example.com", True)
    assert parse_endpoint("HTTP://[::1]:9000", True) == ("[::1]:9000", False)
    for bad in ["", "ftp://h:1", "http://h:1/bucket", "h:1/path", "http://u:p@h:1"]:
        with pytest.raises(ValueError):
            parse_endpoint(bad, True)


def test_s3_get_file_checks_sha_and_leaves_nothing_on_mismatch(s3_store, tmp_path):
    s3_store.ensure_bucket()
    src = _write(tmp_path / "x", b"actual bytes")
    s3_store.client.fput_object(s3_store.bucket, "t/x.bin", str(src), metadata={"sha256": "0" * 64})
    dest = _write(tmp_path / "out" / "x.bin", b"previous download")
    with pytest.raises(OSError, match="sha256"):
        s3_store.get_file("t/x.bin", dest)
    assert dest.read_bytes() == b"previous download"
    assert _files(tmp_path / "out") == ["x.bin"]
