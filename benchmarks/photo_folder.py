"""Build the labelled photo folder the photo benchmarks use, from Debian's Tux Paint stamps.

    apt-get install tuxpaint-stamps-default
    python -m benchmarks.photo_folder --out ~/latentlab-photos

No large labelled colour set exists offline; `tuxpaint-stamps-default` (GPL-2) ships ~800 PNG
stamps, and those outside `cartoon/` folders without `_mirror` in their name are mostly real
photo cut-outs on transparent backgrounds (~200x150 px). The rule below takes six classes with
at least 18 photos each (188 photos), minus five files that contact sheets showed are not photos
or not of the class. Files are copied byte for byte; MANIFEST.tsv lists each file's source and
sha256 prefix. Fish (11) and insects (9) are left out: too few for 5 labels per class.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import shutil
import sys
from pathlib import Path

SOURCE = Path("/usr/share/tuxpaint/stamps")
CLASSES = {
    "mammals": ["animals/mammals", "animals/marsupials"],
    "birds": ["animals/birds"],
    "fruit": ["food/fruit"],
    "vegetables": ["food/vegetables"],
    "flowers": ["plants/flowers"],
    "vehicles": ["vehicles", "military/vehicles"],
}
EXCLUDE = {
    "animals/mammals/hedgehog.png": "cartoon drawing (hedgehog with apple), not a photo",
    "animals/mammals/bears/toys/edward_bear.png": "teddy bear (toy), not a mammal",
    "vehicles/7spoke256.png": "clip-art wheel rendering, not a photo",
    "vehicles/emergency/sedan_police.png": "broken graphic (POLICE decal only)",
    "vehicles/ship/chineseJunk.png": "drawing, not a photo",
}


def photo_files(prefix: str, source: Path = SOURCE) -> list[str]:
    """Photo stamps under source/prefix, as paths relative to source."""
    out = []
    for path in sorted((source / prefix).rglob("*.png")):
        rel = path.relative_to(source).as_posix()
        if "/cartoon/" in "/" + rel or "_mirror" in path.name or rel in EXCLUDE:
            continue
        out.append(rel)
    return out


def build(out: Path, source: Path = SOURCE) -> dict[str, int]:
    """Copy the photos into out/<class>/; returns the count per class."""
    if not source.is_dir():
        raise SystemExit(f"{source} is missing: apt-get install tuxpaint-stamps-default")
    counts, manifest = {}, []
    for name, prefixes in CLASSES.items():
        rels = [rel for prefix in prefixes for rel in photo_files(prefix, source)]
        seen = collections.Counter(Path(rel).name for rel in rels)
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for rel in rels:
            file = Path(rel).name if seen[Path(rel).name] == 1 else rel.replace("/", "__")
            shutil.copyfile(source / rel, folder / file)
            digest = hashlib.sha256((folder / file).read_bytes()).hexdigest()[:16]
            manifest.append((name, file, rel, digest))
        counts[name] = len(rels)
    lines = ["class\tfile\tsource\tsha256[:16]"] + ["\t".join(row) for row in manifest]
    (out / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.photo_folder", description=__doc__)
    parser.add_argument("--out", required=True, help="folder to create (class subfolders)")
    args = parser.parse_args(argv)
    counts = build(Path(args.out).expanduser())
    print(f"{sum(counts.values())} photos: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
