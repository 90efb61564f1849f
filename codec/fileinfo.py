"""`aec info` and `aec list`: what a container holds, without decoding images (every checksum is verified)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from .container import CHUNK_HEAD_SIZE, FILE_HAS_LABELS, open_container
from .entropy import CODER_BLOCKS, CODER_RANGE
from .models import shipped_min_bytes_per_image, shipped_name
from .names import iter_names
from .record import (
    FLAG_CONVERTED,
    FLAG_INVERTED,
    FLAG_RESCUED,
    FLAG_RESIDUAL,
    FLAG_RESIZED,
    NO_LABEL,
    decode_image_info,
    decode_record,
    flag_words,
)

CODER_NAMES = {
    CODER_RANGE: "constriction-range-categorical",
    CODER_BLOCKS: "constriction-range-categorical-blocks-1024",
}

COUNTED = (
    ("converted", FLAG_CONVERTED),
    ("inverted", FLAG_INVERTED),
    ("resized", FLAG_RESIZED),
    ("rescued", FLAG_RESCUED),
    ("residual", FLAG_RESIDUAL),
)


def info(source: str | os.PathLike | BinaryIO | bytes) -> dict:
    """What is inside a container, without decoding images (every checksum is verified)."""
    reader = open_container(source)
    with reader.stream:
        h = reader.header
        # A count the bytes cannot hold is refused before the names are read (they can be billions).
        reader.check_capacity(shipped_min_bytes_per_image(h.fingerprint))
        first_names = []
        for i, name in enumerate(iter_names(reader.names_blob, h.names_raw_length, h.image_count)):
            if i < 5:
                first_names.append(name)
        latent_bytes = chunk_overhead = residual_bytes = 0
        counts = {"converted": 0, "inverted": 0, "resized": 0, "rescued": 0, "residual": 0}
        max_errors: set[int] = set()
        labelled = bool(h.flags & FILE_HAS_LABELS)
        for count, image_info, latents in reader.chunks():
            latent_bytes += len(latents)
            chunk_overhead += CHUNK_HEAD_SIZE + len(image_info)
            record = decode_record(image_info, count, labelled)
            for key, bit in COUNTED:
                counts[key] += int(np.count_nonzero(record.flags & bit))
            residual_bytes += record.residual_bytes
            max_errors.update(np.unique(record.max_errors).tolist())
        total = reader.size
    head = reader.names_offset
    return {
        "file": reader.where,
        "format_version": reader.version,
        "pixel_checksums": h.pixel_crcs is not None,
        "block_checksums": h.block_crcs is not None,
        "images": h.image_count,
        "image_size": [h.width, h.height],
        "latents": h.latents,
        "quality": h.quality,
        "model": shipped_name(h.fingerprint),
        "model_fingerprint": h.fingerprint.hex(),
        "coder": CODER_NAMES.get(h.coder_id, f"unknown ({h.coder_id})"),
        "chunks": h.chunk_count,
        "total_bytes": total,
        "bytes_per_image": total / max(h.image_count, 1),
        "header_bytes": head,
        "names_bytes": h.names_stored_length,
        "payload_bytes": total - head - h.names_stored_length,
        "latent_bytes": latent_bytes,
        "chunk_overhead_bytes": chunk_overhead,
        "images_converted": counts["converted"],
        "images_inverted": counts["inverted"],
        "images_resized": counts["resized"],
        "images_rescued": counts["rescued"],
        "images_with_residual": counts["residual"],
        "residual_bytes": residual_bytes,
        "max_errors": sorted(max_errors),
        "labels": labelled,
        "first_names": first_names,
    }


@dataclass(frozen=True)
class Member:
    """One stored image as `aec list` shows it."""

    name: str
    label: int | None
    flags: int

    @property
    def flag_words(self) -> list[str]:
        return flag_words(self.flags)


def member_chunks(source: str | os.PathLike | BinaryIO | bytes) -> Iterator[tuple[list[str], list[int], list[int]]]:
    """(names, labels (NO_LABEL: none), flags) of each chunk's images, in order, without decoding
    (checksums verified); memory stays flat whatever the file's size."""
    reader = open_container(source)
    with reader.stream:
        h = reader.header
        reader.check_capacity(shipped_min_bytes_per_image(h.fingerprint))  # before billions of names are read
        names = iter_names(reader.names_blob, h.names_raw_length, h.image_count)
        labelled = bool(h.flags & FILE_HAS_LABELS)
        for count, image_info, _ in reader.chunks():
            flags, _, labels = decode_image_info(image_info, count, labelled)
            chunk_names = names.take(count)
            yield chunk_names, labels.tolist() if labels is not None else [NO_LABEL] * count, flags.tolist()


def list_members(source: str | os.PathLike | BinaryIO | bytes) -> Iterator[Member]:
    """Every stored image's name, label and flags, in order, without decoding (checksums verified)."""
    for names, labels, flags in member_chunks(source):
        for name, label, flag in zip(names, labels, flags):
            yield Member(name, None if label == NO_LABEL else label, flag)
