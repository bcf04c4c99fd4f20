"""Paying public funds into residents' accounts: the Zengin 総合振込 file a paying agency sends its bank."""

from publicmesh.payouts.zengin import (
    Remitter,
    Transfer,
    TransferFile,
    ZenginError,
    holder_text,
    parse,
    summary,
    transfer_to,
    write,
    zengin_text,
)

__all__ = [
    "Remitter",
    "Transfer",
    "TransferFile",
    "ZenginError",
    "holder_text",
    "parse",
    "summary",
    "transfer_to",
    "write",
    "zengin_text",
]
