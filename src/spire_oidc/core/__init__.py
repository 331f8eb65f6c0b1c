"""The core: keys, rendered documents, the shared key store, persisted state, time."""
