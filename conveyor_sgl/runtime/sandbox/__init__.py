"""The confinement layers of a tool worker, one per file; ``confine.enter`` applies them."""
