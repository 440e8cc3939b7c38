"""Sequences and benchmark datasets as users have them on disk (see ``sequences``)."""

from siam_core.data.sequences import (
    OTB,
    UAV123,
    VOT,
    VOTLT,
    Dataset,
    GOT10k,
    LaSOT,
    NfS,
    Sequence,
    SequenceFolder,
    SequenceList,
    TrackingNet,
    load_sequence,
    open_dataset,
    read_regions,
)

__all__ = [
    "OTB",
    "UAV123",
    "VOT",
    "VOTLT",
    "Dataset",
    "GOT10k",
    "LaSOT",
    "NfS",
    "Sequence",
    "SequenceFolder",
    "SequenceList",
    "TrackingNet",
    "load_sequence",
    "open_dataset",
    "read_regions",
]
