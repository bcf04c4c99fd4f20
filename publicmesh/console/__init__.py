"""The staff console (職員用画面): a municipality's review queue, cases, decisions and figures."""
