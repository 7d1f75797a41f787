"""``orchestrate shards --from-dir DIR --out DIR``: a folder of ABID-layout bins -> WebDataset
shards and their index (``bincounter.shards``), here, without Docker. Scripts outside the repo
call exactly this form."""

from __future__ import annotations

from pathlib import Path

from bincounter.shards import folder_bins, merge_indexes, read_back, write_part
from orchestrate.core.config import Config, ConfigError


def cmd_shards(args, cfg: Config, sess) -> int:
    source, out = Path(args.from_dir), Path(args.out)
    if not (source / "images").is_dir():
        raise ConfigError(f"--from-dir {source}: no images/ folder (the ABID layout: images/<id>.jpg, "
                          "metadata/<id>.json)")
    bins = folder_bins(source)
    part = write_part(bins, out, "00000", args.shard_mb, args.split_seed)
    index = merge_indexes(out)
    held = read_back(out)
    listed = {u["bin_id"] for u in index["unreadable"]}
    missing = {b.bin_id for b in bins} - set(held) - listed
    if missing:  # never expected: the writer lists what it cannot pack
        raise ConfigError(f"{len(missing)} bins neither in a shard nor listed unreadable, e.g. {sorted(missing)[0]}")
    t = index["totals"]
    print(f"shards: {len(bins):,} bins -> {sum(v['shards'] for v in t.values())} shards in {out} "
          f"({part['skipped']} already finished): " + ", ".join(f"{k} {v['bins']:,} bins in {v['shards']}"
                                                             for k, v in t.items()))
    print(f"unreadable: {len(listed)} (listed in {out / 'shards.json'} with the reason)")
    return 0
