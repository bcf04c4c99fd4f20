"""The witness (証人): a process outside the hub, with its own key and store, that countersigns the audit log's
checkpoints only when each is consistent with the last one it countersigned (after Certificate Transparency's
witnesses), so a log cut back or rewritten after it was witnessed is caught."""
