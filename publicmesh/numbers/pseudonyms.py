"""Agency pseudonyms (機関別符号) and stateless conversion between agencies.

A pseudonym is AES-256 of one block — the My Number (8 bytes) followed by 8 fixed bytes — under the
pseudonym domain's key (encode-then-encipher): deterministic, unlinkable across domains without the
keys, and a forged or mistyped pseudonym decrypts to the wrong redundancy and is rejected.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from publicmesh.numbers import codec
from publicmesh.numbers.issue import MyNumberIssuer
from publicmesh.numbers.keys import derive_key

_REDUNDANCY = np.frombuffer(b"PSM-v1\x00\x00", dtype=np.uint8)


class UnknownPseudonym(ValueError):
    """A pseudonym that this domain's key did not produce."""


class PseudonymService:
    """Issues pseudonyms per (person, domain) and converts them between domains."""

    def __init__(self, master: bytes):
        self._master = master
        self._issuer = MyNumberIssuer(derive_key(master, "my-number-issue"))

    @lru_cache(maxsize=4096)
    def _cipher(self, domain: str) -> Cipher:
        if not domain or len(domain) > 200:
            raise ValueError("a pseudonym domain is a short non-empty name")
        return Cipher(algorithms.AES(derive_key(self._master, f"pseudonym-domain:{domain}")), modes.ECB())

    def _encipher(self, numbers: np.ndarray, domain: str) -> pa.StringArray:
        blocks = np.empty((len(numbers), 16), dtype=np.uint8)
        blocks[:, :8] = np.asarray(numbers, dtype=">u8").view(np.uint8).reshape(-1, 8)
        blocks[:, 8:] = _REDUNDANCY
        encryptor = self._cipher(domain).encryptor()
        out = encryptor.update(blocks.tobytes()) + encryptor.finalize()
        return codec.encode(np.frombuffer(out, dtype=np.uint8).reshape(-1, 16))

    def _decipher(self, pseudonyms, domain: str) -> tuple[np.ndarray, np.ndarray]:
        blocks, valid = codec.decode(pseudonyms)
        decryptor = self._cipher(domain).decryptor()
        plain = np.frombuffer(decryptor.update(blocks.tobytes()) + decryptor.finalize(), dtype=np.uint8)
        plain = plain.reshape(-1, 16)
        valid &= (plain[:, 8:] == _REDUNDANCY).all(axis=1)
        numbers = plain[:, :8].copy().view(">u8").reshape(-1).astype(np.int64)
        return numbers, valid

    def enrol(self, serials: np.ndarray, domains: list[str]) -> dict[str, pa.StringArray]:
        """Pseudonyms of the persons with these serials in each domain; the My Numbers stay inside."""
        numbers = self._issuer.issue(np.asarray(serials))
        return {domain: self._encipher(numbers, domain) for domain in domains}

    def _encipher_where(self, numbers: np.ndarray, valid: np.ndarray, domain: str) -> pa.StringArray:
        """Pseudonyms of the valid entries, null (and empty, so nothing is sent for them) elsewhere."""
        if valid.all():
            return self._encipher(numbers, domain)
        enciphered = self._encipher(numbers[valid], domain)
        offsets = np.zeros(len(numbers) + 1, dtype=np.int32)
        np.cumsum(valid * np.int32(codec.PSEUDONYM_LENGTH), out=offsets[1:])
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
        return pa.StringArray.from_buffers(len(numbers), pa.py_buffer(offsets), enciphered.buffers()[2], validity,
                                           int(len(numbers) - valid.sum()))

    def convert(self, pseudonyms, source: str, targets: list[str]) -> dict:
        """Each pseudonym of ``source`` in every target domain, null (None) where it is not a valid pseudonym.

        An Arrow array (or chunked array) in gives Arrow string arrays out; a list gives lists."""
        numbers, valid = self._decipher(pseudonyms, source)
        converted = {target: self._encipher_where(numbers, valid, target) for target in targets}
        if isinstance(pseudonyms, (pa.Array, pa.ChunkedArray)):
            return converted
        return {target: values.to_pylist() for target, values in converted.items()}

    def convert_one(self, pseudonym: str, source: str, target: str) -> str:
        converted = self.convert([pseudonym], source, [target])[target][0]
        if converted is None:
            raise UnknownPseudonym(pseudonym)
        return converted

    def my_numbers_for_test(self, serials: np.ndarray) -> list[str]:
        """The My Numbers of serials, as text — only for the privacy tests that scan other stores."""
        return [f"{n:012d}" for n in self._issuer.issue(np.asarray(serials)).tolist()]
