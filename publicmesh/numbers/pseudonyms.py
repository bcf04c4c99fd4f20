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

from publicmesh.numbers.issue import MyNumberIssuer
from publicmesh.numbers.keys import derive_key
from publicmesh.protocol import codec

_REDUNDANCY = np.frombuffer(b"PSM-v1\x00\x00", dtype=np.uint8)


class UnknownPseudonym(ValueError):
    """A pseudonym that this domain's key did not produce."""


class PseudonymService:
    """Issues pseudonyms per (person, domain) and converts them between domains."""

    def __init__(self, master: bytes):
        self._master = master
        self._issuer = MyNumberIssuer(derive_key(master, "my-number-issue"))
        # Per service, not on the method: a cache on the method would keep every service alive.
        self._cipher = lru_cache(maxsize=4096)(self._new_cipher)

    def _new_cipher(self, domain: str) -> Cipher:
        if not domain or len(domain) > 200:
            raise ValueError("a pseudonym domain is a short non-empty name")
        return Cipher(algorithms.AES(derive_key(self._master, f"pseudonym-domain:{domain}")), modes.ECB())

    def _encipher(self, numbers: np.ndarray, domain: str) -> pa.StringArray:
        plain = np.empty((len(numbers), 16), dtype=np.uint8)
        plain[:, :8] = np.asarray(numbers, dtype=">u8").view(np.uint8).reshape(-1, 8)
        plain[:, 8:] = _REDUNDANCY
        return codec.encode(_ecb(self._cipher(domain).encryptor(), plain))

    def _decipher(self, pseudonyms, domain: str) -> tuple[np.ndarray, np.ndarray]:
        """The plain blocks (My Number and redundancy) of the pseudonyms, and which are valid."""
        blocks, valid = codec.decode(pseudonyms)
        plain = _ecb(self._cipher(domain).decryptor(), blocks)
        valid &= (plain[:, 8:] == _REDUNDANCY).all(axis=1)
        return plain, valid

    def enrol(self, serials: np.ndarray, domains: list[str]) -> dict[str, pa.StringArray]:
        """Pseudonyms of the persons with these serials in each domain; the My Numbers stay inside."""
        numbers = self._issuer.issue(np.asarray(serials))
        return {domain: self._encipher(numbers, domain) for domain in domains}

    def _encipher_where(self, plain: np.ndarray, valid: np.ndarray, domain: str) -> pa.StringArray:
        """Pseudonyms of the valid blocks, null (and empty, so nothing is sent for them) elsewhere."""
        everyone = bool(valid.all())
        enciphered = codec.encode(_ecb(self._cipher(domain).encryptor(), plain if everyone else plain[valid]))
        if everyone:
            return enciphered
        offsets = np.zeros(len(plain) + 1, dtype=np.int32)
        np.cumsum(valid * np.int32(codec.PSEUDONYM_LENGTH), out=offsets[1:])
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
        return pa.StringArray.from_buffers(
            len(plain), pa.py_buffer(offsets), enciphered.buffers()[2], validity, int(len(plain) - valid.sum())
        )

    def convert(self, pseudonyms, source: str, targets: list[str]) -> dict:
        """Each pseudonym of ``source`` in every target domain, null (None) where it is not a valid pseudonym.

        An Arrow array (or chunked array) in gives Arrow string arrays out; a list gives lists."""
        # The plain block is the same in every domain: re-encipher it, the My Number never leaves it.
        plain, valid = self._decipher(pseudonyms, source)
        converted = {target: self._encipher_where(plain, valid, target) for target in targets}
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


def _ecb(context, blocks: np.ndarray) -> np.ndarray:
    """AES-ECB of N×16 bytes into a new N×16 array, without intermediate bytes objects."""
    out = np.empty((len(blocks) * 16 + 15,), dtype=np.uint8)  # update_into wants a block of slack
    written = context.update_into(np.ascontiguousarray(blocks), out)
    context.finalize()
    return out[:written].reshape(-1, 16)
