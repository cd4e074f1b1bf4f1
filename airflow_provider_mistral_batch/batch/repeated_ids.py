"""Find the custom_ids of a stream that repeat an earlier one, without keeping the ids."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

_Place = TypeVar("_Place")


class RepeatedIds:
    """Finds the custom_ids of a stream that repeat an earlier one, without keeping the ids.

    Each id leaves only its 64-bit ``hash()`` (8 bytes, in 256 arrays by the low byte, a
    million ids in about 9 MB); only if two hashes are equal does :meth:`repeats` read the ids
    back once, to name each repeat and where its first one is (and to tell a real repeat from
    two ids whose hashes happen to be equal).
    """

    def __init__(self) -> None:
        self._hashes = [array("q") for _ in range(256)]

    def add(self, custom_id: str) -> None:
        """Take the next id of the stream."""
        id_hash = _id_hash(custom_id)
        self._hashes[id_hash & 255].append(id_hash)

    def repeats(
        self, read_back: Callable[[], Iterable[tuple[str, _Place]]]
    ) -> Iterator[tuple[str, _Place, _Place]]:
        """``(custom_id, place, place of its first one)`` of each id that repeats, in order.

        :param read_back: the ids again, in the same order, each with its place (what names
            where it is); only called when two ids have the same hash.
        """
        repeated = self._repeated_hashes()
        if not repeated:
            return
        first: dict[str, _Place] = {}
        for custom_id, place in read_back():
            if _id_hash(custom_id) not in repeated:
                continue
            if custom_id in first:
                yield custom_id, place, first[custom_id]
            else:
                first[custom_id] = place

    def _repeated_hashes(self) -> set[int]:
        repeated: set[int] = set()
        for hashes in self._hashes:
            if len(set(hashes)) == len(hashes):
                continue
            seen: set[int] = set()
            for id_hash in hashes:
                if id_hash in seen:
                    repeated.add(id_hash)
                seen.add(id_hash)
        return repeated


def _id_hash(custom_id: str) -> int:
    # The hash of the text (a str subclass may hash otherwise); the same as read back.
    return hash(custom_id) if type(custom_id) is str else str.__hash__(custom_id)


__all__ = ["RepeatedIds"]
