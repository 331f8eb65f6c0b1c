"""Key sources: long-running tasks that publish key-set snapshots into the store."""
