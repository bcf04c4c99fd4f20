"""Issue of My Numbers: a keyed permutation of person serials onto 11-digit bases, plus the check digit.

Stateless and collision-free: serial → base is a Feistel permutation of [0, 2**37) cycle-walked into
[0, 10**11), so no table of issued numbers is needed to keep them unique.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from publicmesh.numbers.my_number import BASE_SPACE, with_check_digits

_HALF_BITS = (19, 18)  # 37 bits: 2**37 ≈ 1.37 × 10**11 ≥ 10**11
_ROUNDS = 8


class MyNumberIssuer:
    """Maps person serials to My Numbers, vectorised."""

    def __init__(self, key: bytes):
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())

    def _round_function(self, values: np.ndarray, round_index: int, bits: int) -> np.ndarray:
        blocks = np.zeros((len(values), 16), dtype=np.uint8)
        blocks[:, :8] = values.astype(">u8").view(np.uint8).reshape(-1, 8)
        blocks[:, 8] = round_index
        encryptor = self._cipher.encryptor()
        out = np.frombuffer(encryptor.update(blocks.tobytes()) + encryptor.finalize(), dtype=np.uint8)
        head = out.reshape(-1, 16)[:, :8].copy().view(">u8").reshape(-1).astype(np.uint64)
        return head & np.uint64((1 << bits) - 1)

    def _permute(self, values: np.ndarray) -> np.ndarray:
        left_bits, right_bits = _HALF_BITS
        left = values >> np.uint64(right_bits)
        right = values & np.uint64((1 << right_bits) - 1)
        for round_index in range(_ROUNDS):
            # Unbalanced Feistel: alternate which half is mixed so both widths stay fixed.
            if round_index % 2 == 0:
                left = left ^ self._round_function(right, round_index, left_bits)
            else:
                right = right ^ self._round_function(left, round_index, right_bits)
        return (left << np.uint64(right_bits)) | right

    def bases(self, serials: np.ndarray) -> np.ndarray:
        serials = np.asarray(serials, dtype=np.uint64)
        if len(serials) and int(serials.max()) >= BASE_SPACE:
            raise ValueError("serial outside the My Number space")
        out = self._permute(serials)
        pending = out >= np.uint64(BASE_SPACE)
        while pending.any():  # cycle walking keeps the permutation inside [0, 10**11)
            out[pending] = self._permute(out[pending])
            pending = out >= np.uint64(BASE_SPACE)
        return out.astype(np.int64)

    def issue(self, serials: np.ndarray) -> np.ndarray:
        """12-digit My Numbers (as int64) for the given person serials."""
        return with_check_digits(self.bases(serials))
