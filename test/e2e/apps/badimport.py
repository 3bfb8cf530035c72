"""An application module that fails at import: `wsgate serve` must exit 1
with one clear line instead of restarting workers forever."""

raise RuntimeError("e2e: this module fails at import")
