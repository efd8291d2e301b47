"""Copy the files git tracks in a checkout into an empty folder: the working directory cluster/submit uploads.

    python3 cluster/stage.py REPO DEST

Only tracked files travel, with their content in the working tree (so edits to tracked files that are
not committed yet do run). A file git does not track stays on this machine even when no .gitignore
rule covers it: a stray ``.env``, credentials, scratch data. ``git add`` a new file to send it.

Left out as well, with a note: tracked files deleted locally, submodules (their files are another
repository's), and tracked symbolic links that point outside the checkout (the upload would copy
what they point to).

Exit status 2 with a one-line message when REPO is not a git checkout or DEST is not empty.
Standard library only: it runs on the submitting machine before anything of rlexec is imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


class StageError(Exception):
    pass


def _git(repo: Path, *args: str) -> bytes:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True, timeout=60).stdout
    except FileNotFoundError as exc:
        raise StageError("the 'git' command is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise StageError(exc.stderr.decode(errors="replace").strip() or f"git {' '.join(args)} failed") from exc


def checkout_root(repo: Path) -> Path:
    try:
        return Path(_git(repo, "rev-parse", "--show-toplevel").decode().strip()).resolve()
    except StageError as exc:
        raise StageError(
            f"{repo} is not a git checkout: only files git tracks are uploaded, so run from a clone of the "
            f"repository ({exc})"
        ) from exc


def tracked_paths(root: Path) -> list[str]:
    return [p for p in _git(root, "ls-files", "-z", "--cached").decode().split("\0") if p]


def stage(repo: Path, dest: Path) -> tuple[int, int, list[str]]:
    """Copy ``repo``'s tracked files into ``dest``; returns (files copied, bytes copied, notes on what was left out)."""
    root = checkout_root(repo)
    if dest.exists() and any(dest.iterdir()):
        raise StageError(f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    files = size = 0
    notes = []
    for rel in tracked_paths(root):
        source = root / rel
        target = dest / rel
        if source.is_symlink():
            resolved = source.resolve()
            if resolved != root and root not in resolved.parents:
                notes.append(f"{rel}: a link to {resolved}, outside the checkout")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(source), target)
            files += 1
        elif source.is_dir():
            notes.append(f"{rel}: a submodule")
        elif not source.exists():
            notes.append(f"{rel}: deleted in the working tree")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            files += 1
            size += source.stat().st_size
    return files, size, notes


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 cluster/stage.py REPO DEST", file=sys.stderr)
        return 2
    try:
        files, size, notes = stage(Path(argv[0]).resolve(), Path(argv[1]))
    except StageError as exc:
        print(f"cluster/stage.py: {exc}", file=sys.stderr)
        return 2
    print(f"staged {files} files tracked by git ({size / 1e6:.1f} MB); untracked files stay here (git add to send one)")
    for note in notes:
        print(f"  left out: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
