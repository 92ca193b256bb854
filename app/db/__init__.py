"""The SQL layer: one module per concern, functions that take a pool or a held connection, plus the pool itself."""
