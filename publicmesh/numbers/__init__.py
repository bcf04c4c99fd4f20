"""Numbers (番号管理): My Number issue and check digit, agency pseudonyms (機関別符号) and their conversion.

The only package that ever sees a My Number. Conversion is stateless cryptography under keys
held here; there is no mapping table.
"""

from publicmesh.numbers.my_number import check_digit, is_valid_my_number
from publicmesh.numbers.pseudonyms import PseudonymService, UnknownPseudonym

__all__ = ["check_digit", "is_valid_my_number", "PseudonymService", "UnknownPseudonym"]
