"""The manifest of what the bases learnt: one line per file of the bases' dataset.

    python scripts/base_manifest.py CORPUS/SOURCES.tsv DATA/index.json > checkpoints/base/SOURCES.tsv

Each line of the corpus's SOURCES.tsv (path, collection, source, licence, sha256) whose file
was ingested into the bases' dataset, with its split: `train` (learnt) or `val` (held out
to validate the bases, never trained on).
"""

import json
import sys


def main() -> int:
    sources, index = sys.argv[1], sys.argv[2]
    split = {f["path"]: f["split"] for f in json.load(open(index))["files"]}
    lines = open(sources).read().splitlines()
    print(lines[0] + "\tsplit")
    for line in lines[1:]:
        path = line.split("\t", 1)[0]
        if path in split:
            print(f"{line}\t{split[path]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
