"""Public services (公共サービス) defined in YAML and published on the mesh: definitions, rules, applications,
payouts."""
