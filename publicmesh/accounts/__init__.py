"""Public-fund receiving accounts (公金受取口座): checked against the Zengin code list and the person's name."""

from publicmesh.accounts.banks import (
    YUCHO, BankInfo, BranchInfo, bank_info, bank_name, branch_info, branch_name, search_banks, search_branches,
    yucho_to_zengin,
)
from publicmesh.accounts.kana import holder_matches, person_holder_kana, to_holder_kana
from publicmesh.accounts.registry import (
    ACTIVE, REPLACED, STORE, WITHDRAWN, PublicFundAccount, account_history, account_of, accounts_of_many, ensure_schema, masked,
    open_store, register_account, withdraw_account,
)
from publicmesh.accounts.validation import ACCOUNT_TYPES, AccountError, ValidatedAccount, validate_account

__all__ = [
    "ACCOUNT_TYPES", "ACTIVE", "REPLACED", "STORE", "WITHDRAWN", "YUCHO",
    "AccountError", "BankInfo", "BranchInfo", "PublicFundAccount", "ValidatedAccount",
    "account_history", "account_of", "accounts_of_many", "bank_info", "bank_name", "branch_info", "branch_name", "ensure_schema",
    "holder_matches", "masked", "open_store", "person_holder_kana", "register_account", "search_banks",
    "search_branches", "to_holder_kana", "validate_account", "withdraw_account", "yucho_to_zengin",
]
