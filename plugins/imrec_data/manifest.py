"""Pinned public sources and SHA-256 checksums of the files ``imrec data get`` fetches.

Every file comes from a public GitHub repository at a fixed commit (``raw.githubusercontent.com``), so a
download is reproducible and its checksum can be hard-coded. The SDK's standard folds are published as Python
files (``cmu_mosi_std_folds.py``); ``get`` parses their lists and writes the JSON file whose checksum is below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

BCLSTM = ("declare-lab/contextual-utterance-level-multimodal-sentiment-analysis", "3874cf25a7fbda75df27ee65b297afa781d7f32c")
ASA_MOSI = ("ASA-MOSI/Audio-Sentiment-Analysis", "c482dd2d939b1a7835d90e4a88ef7cbc4e73f76d")
CMU_SDK = ("CMU-MultiComp-Lab/CMU-MultimodalSDK", "4f2eadcd7e7b9e20e83b868cdad385b41830285c")
TMC = ("hanmenghan/TMC", "08d0ca4c4461b6de1cf73514d8c621598bc2b504")
SDK_FOLDS_DIR = "mmsdk/mmdatasdk/dataset/standard_datasets"


@dataclass(frozen=True)
class Source:
    """A file in a public GitHub repository at a pinned commit."""

    repo: str
    commit: str
    path: str

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{quote(self.path)}"


@dataclass(frozen=True)
class FileEntry:
    """One file of a bundle: its name in the bundle folder, checksum, source, and how the source becomes it.

    ``transform`` is ``"copy"`` (the source bytes are the file) or ``"sdk_folds"`` (the source is the SDK's
    folds module, whose three lists become the JSON file, see :func:`folds_json`).
    """

    name: str
    sha256: str
    source: Source
    transform: str = "copy"


@dataclass(frozen=True)
class Bundle:
    """The files of one downloadable dataset, kept in ``<data dir>/<folder>/``."""

    name: str
    folder: str
    files: tuple[FileEntry, ...]
    terms: str

    def entry(self, name: str) -> FileEntry:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)


def _bclstm(name: str, sha: str) -> FileEntry:
    return FileEntry(name, sha, Source(*BCLSTM, f"data/{name}"))


BUNDLES: dict[str, Bundle] = {
    "mosi-bclstm": Bundle(
        name="mosi-bclstm",
        folder="mosi_bclstm",
        terms="CMU-MOSI research-use terms",
        files=(
            FileEntry(
                "OpinionLevelSentiment.csv",
                "5af5525f6c2c70a24c2fb8bda6c67dee37183f6f588955e753f0bd4fd6f9523a",
                Source(*ASA_MOSI, "OpinionLevelSentiment.csv"),
            ),
            _bclstm("audio_test0.csv", "ddd17eeefd3d951d51d4e2ef8a0d132652d8161e1886f71eb7262b7a14bffff6"),
            _bclstm("audio_train0.csv", "5435398a54664e7b00304587dc59ae84a438852be033c2a2fba779588624a2a1"),
            FileEntry(
                "mosei_std_folds.json",
                "585cd3b88fa68d298620ac9b8275167e01ee1c7f974b840d7f1c919f8651453a",
                Source(*CMU_SDK, f"{SDK_FOLDS_DIR}/CMU_MOSEI/cmu_mosei_std_folds.py"),
                transform="sdk_folds",
            ),
            FileEntry(
                "mosi_std_folds.json",
                "e4d3ee76a344712ee46745eadf69b3892062257ab95ee2fab6b136dc492ecc83",
                Source(*CMU_SDK, f"{SDK_FOLDS_DIR}/CMU_MOSI/cmu_mosi_std_folds.py"),
                transform="sdk_folds",
            ),
            _bclstm("text_test.csv", "f3b735070bf07ceff7a6ef6c8f4c32757e988de484e35bd6d38b2aecef851a59"),
            _bclstm("text_test0.csv", "a343e22272919d1384c2075dbcdd5fef5aa9f9366b0552a83f7c3147b64b047a"),
            _bclstm("text_train.csv", "73770b6302ad0f7a51f4eddcae6788efde4d0b6802e09f78249d5b538d1c1d67"),
            _bclstm("text_train0.csv", "cc327045db6cc361a08b4037b97bb24de4ddb5efb381468c4835cc4a60674668"),
            _bclstm("transcripts.csv", "e7689e6d70720addd2a6b316419d245a68839c32b014ff426c406063ee777466"),
            _bclstm("video_test0.csv", "cab836253d81100f59d533fa2ff65cd53c486be3ec9fd82203c5e25a7a77265f"),
            _bclstm("video_train0.csv", "b6efc0413132d627efd06f67f1706830e775e90af9a75696f535c48dbc73f12f"),
        ),
    ),
    "handwritten": Bundle(
        name="handwritten",
        folder="handwritten",
        terms="UCI Multiple Features, CC BY 4.0",
        files=(
            FileEntry(
                "handwritten_6views.mat",
                "d731ec02aaa97cf9a5826df68b0dd1e73ba61a82ba3c8f64606ba402926c885b",
                Source(*TMC, "TMC ICLR/datasets/handwritten_6views.mat"),
            ),
        ),
    ),
}


def folds_json(source: Source, folds: dict[str, list[str]]) -> bytes:
    """The folds JSON file exactly as published in the data mirror (its checksum is in :data:`BUNDLES`).

    One value per line: ``source`` (where the lists come from), ``unit``, then ``train``, ``valid``, ``test``.
    """
    head = {
        "source": f"github {source.repo}@{source.commit} {source.path} (lists copied verbatim, video ids)",
        "unit": "video_id",
    }
    items = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()]
    items += [f"{json.dumps(k)}: [\n" + ",\n".join(json.dumps(v) for v in folds[k]) + "\n]" for k in ("train", "valid", "test")]
    return ("{\n" + ",\n".join(items) + "\n}").encode()
