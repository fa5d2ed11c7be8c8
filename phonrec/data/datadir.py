"""Kaldi-style data directories: the one on-disk format every corpus reader produces.

A data directory holds plain text files, one utterance per line, keyed by utterance id::

    wav.scp      utt  path/to/audio.{wav,flac,ogg,sph}
    text         utt  WORD WORD ...            (upper-case words; may be empty)
    utt2spk      utt  speaker
    phones       utt  ph ph ph ...             (optional: the phone string, no timing)
    alignments   utt  ph ph ph ph ...          (optional: one phone symbol per 10 ms frame)

Paths in ``wav.scp`` that are relative resolve against the directory that holds ``wav.scp``
(not the current working directory). Kaldi's piped commands (``sox a.wav -t wav - |``) are
refused: phonrec never runs a command named in a data file.

``spk2utt`` is written for Kaldi tools but never read (it is derived from ``utt2spk``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from phonrec.textfile import read_lines

log = logging.getLogger(__name__)

OPTIONAL_FILES = ("phones", "alignments")


class DataDirError(ValueError):
    """A data-directory file is malformed; the message names the file and line."""


def log_skipped(
    logger: logging.Logger, where: str, skipped: dict[str, str], noun: str = "utterances", shown: int = 20
) -> None:
    """One warning listing what a reader skipped and why: ``WHERE: N NOUN skipped: id: reason; ...``."""
    if skipped:
        listed = "; ".join(f"{key}: {why}" for key, why in sorted(skipped.items())[:shown])
        logger.warning(
            "%s: %d %s skipped: %s%s", where, len(skipped), noun, listed, " ..." if len(skipped) > shown else ""
        )


def read_kaldi_map(path: str | Path, *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a Kaldi ``key value...`` file into ``{key: rest_of_line}``.

    Args:
        path: the file.
        allow_empty_value: accept lines with a key and nothing after it (``text`` of silence).

    Raises:
        DataDirError: naming file and line for a duplicate key, a missing value or bytes that
            are not UTF-8.
    """
    path = Path(path)
    entries: dict[str, str] = {}
    for line_no, raw in enumerate(read_lines(path, error=DataDirError), start=1):
        line = raw.strip()
        if not line:
            continue
        key, _, value = line.partition(" ")
        value = value.strip()
        if "\t" in key:
            key, _, rest = key.partition("\t")
            value = (rest + " " + value).strip()
        if not value and not allow_empty_value:
            raise DataDirError(f"{path}:{line_no}: utterance {key!r} has no value")
        if key in entries:
            raise DataDirError(f"{path}:{line_no}: duplicate key {key!r}")
        entries[key] = value
    return entries


def write_kaldi_map(path: str | Path, entries: dict[str, str]) -> None:
    """Write ``{key: value}`` sorted by key (Kaldi's ``sort`` order, C locale), atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for key in sorted(entries):
            value = entries[key]
            f.write(f"{key} {value}\n" if value else f"{key}\n")
    tmp.replace(path)


def resolve_wav_path(entry: str, base: Path, *, source: str) -> Path:
    """Turn a ``wav.scp`` value into a path (relative paths against ``base``).

    Raises:
        DataDirError: for piped commands, which phonrec refuses to execute.
    """
    entry = entry.strip()
    if entry.endswith("|") or entry.startswith("|"):
        raise DataDirError(
            f"{source}: piped commands are not supported (phonrec never runs commands from data files): {entry!r}"
        )
    path = Path(entry)
    return path if path.is_absolute() else base / path


@dataclass
class DataDir:
    """An in-memory Kaldi-style data directory.

    Attributes:
        wavs: utterance id -> audio path (resolved).
        text: utterance id -> word transcript (may be ``""``).
        utt2spk: utterance id -> speaker id.
        phones: utterance id -> phone symbols, or ``None`` when unknown.
        alignments: utterance id -> one phone symbol per frame (100 Hz), or ``None``.
    """

    wavs: dict[str, Path]
    text: dict[str, str]
    utt2spk: dict[str, str]
    phones: dict[str, list[str]] | None = None
    alignments: dict[str, list[str]] | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def utts(self) -> list[str]:
        """Utterance ids in sorted order (the order of every file)."""
        return sorted(self.wavs)

    def __len__(self) -> int:
        return len(self.wavs)

    @classmethod
    def load(cls, path: str | Path) -> "DataDir":
        """Read a data directory. Utterances missing from ``text``/``utt2spk`` are reported and dropped.

        Raises:
            DataDirError: when ``wav.scp`` is missing or a file is malformed (file:line named).
        """
        path = Path(path)
        scp = path / "wav.scp"
        if not scp.is_file():
            raise DataDirError(f"{path}: not a data directory (no wav.scp)")
        wavs = {
            utt: resolve_wav_path(value, path, source=f"{scp} ({utt})") for utt, value in read_kaldi_map(scp).items()
        }
        text = read_kaldi_map(path / "text", allow_empty_value=True) if (path / "text").is_file() else {}
        utt2spk = read_kaldi_map(path / "utt2spk") if (path / "utt2spk").is_file() else {u: u for u in wavs}
        optional: dict[str, dict[str, list[str]] | None] = {}
        for name in OPTIONAL_FILES:
            file = path / name
            optional[name] = (
                {u: v.split() for u, v in read_kaldi_map(file, allow_empty_value=True).items()}
                if file.is_file()
                else None
            )
        missing = sorted(u for u in wavs if u not in utt2spk)
        if missing:
            log.warning("%s: %d utterances have no utt2spk entry and are skipped: %s", path, len(missing), missing[:10])
            for u in missing:
                del wavs[u]
        return cls(
            wavs=wavs,
            text={u: text.get(u, "") for u in wavs},
            utt2spk={u: utt2spk[u] for u in wavs},
            phones=optional["phones"],
            alignments=optional["alignments"],
            path=path,
        )

    def save(self, path: str | Path) -> None:
        """Write the directory (``wav.scp`` with absolute paths, plus ``spk2utt`` for Kaldi tools)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_kaldi_map(path / "wav.scp", {u: str(Path(p).resolve()) for u, p in self.wavs.items()})
        write_kaldi_map(path / "text", self.text)
        write_kaldi_map(path / "utt2spk", self.utt2spk)
        spk2utt: dict[str, list[str]] = {}
        for utt in self.utts:
            spk2utt.setdefault(self.utt2spk[utt], []).append(utt)
        write_kaldi_map(path / "spk2utt", {s: " ".join(us) for s, us in spk2utt.items()})
        for name in OPTIONAL_FILES:
            table = getattr(self, name)
            if table is not None:
                write_kaldi_map(path / name, {u: " ".join(v) for u, v in table.items()})
            elif (path / name).exists():
                (path / name).unlink()  # a stale file from an earlier save would be read back by load()
        self.path = path

    def subset(self, utts: list[str] | set[str]) -> "DataDir":
        """A new DataDir with only ``utts`` (ids absent here are ignored)."""
        wanted = set(utts)
        keep = [u for u in self.utts if u in wanted]

        def pick(table):
            return None if table is None else {u: table[u] for u in keep if u in table}

        return DataDir(
            wavs={u: self.wavs[u] for u in keep},
            text={u: self.text[u] for u in keep},
            utt2spk={u: self.utt2spk[u] for u in keep},
            phones=pick(self.phones),
            alignments=pick(self.alignments),
        )

    def speakers(self) -> list[str]:
        """Sorted distinct speaker ids."""
        return sorted(set(self.utt2spk.values()))
