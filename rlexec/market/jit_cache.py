"""Keep numba's on-disk cache of this package consistent with its sources.

numba keys a cached function on its own source file only: after an edit to ``agents.py`` the
cached event loop in ``kernel.py`` would keep running the old agent code. Before anything here
is compiled, :func:`drop_stale_cache` compares a digest of all the package's sources with the
one stamped next to the cache and clears the cache when they differ. It does nothing where the
cache directory is not writable or numba caches elsewhere (``NUMBA_CACHE_DIR``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CACHE_DIR = PACKAGE_DIR / "__pycache__"
STAMP = CACHE_DIR / "numba-sources.sha256"


def sources_digest() -> str:
    digest = hashlib.sha256()
    for source in sorted(PACKAGE_DIR.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def drop_stale_cache() -> None:
    current = sources_digest()
    try:
        if STAMP.exists() and STAMP.read_text() == current:
            return
        for cached in CACHE_DIR.glob("*.nb[ic]"):
            cached.unlink(missing_ok=True)
        CACHE_DIR.mkdir(exist_ok=True)
        STAMP.write_text(current)
    except OSError:
        return
