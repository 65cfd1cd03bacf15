#!/usr/bin/python3
"""Compares two detailed massif snapshots: total live heap, and the
allocation sites (the function that called the allocator, with its caller)
whose live bytes changed most, per connection.

    massif_diff.py BEFORE AFTER CONNECTIONS
"""
import re
import sys

NODE = re.compile(r"^( *)n(\d+): (\d+) (.*)$")


def load(path):
    """(heap bytes, {(site, caller): bytes}) of the one detailed snapshot in path."""
    total, sites, stack = 0, {}, []
    in_tree = False
    for line in open(path):
        if line.startswith("mem_heap_B="):
            total = int(line.split("=")[1])
        if line.startswith("heap_tree=detailed"):
            in_tree = True
            continue
        m = NODE.match(line) if in_tree else None
        if not m:
            continue
        depth, size, where = len(m.group(1)), int(m.group(3)), m.group(4)
        name = re.sub(r"^0x[0-9A-Fa-f]+: ", "", where)
        name = re.sub(r"\(.*", "", name).strip()[:100]
        stack = stack[:depth] + [name]
        if depth == 2:  # allocator <- site <- caller: the site and its caller
            sites[(stack[1], stack[2])] = sites.get((stack[1], stack[2]), 0) + size
    return total, sites


def main():
    before_path, after_path, conns = sys.argv[1], sys.argv[2], int(sys.argv[3])
    before_total, before = load(before_path)
    after_total, after = load(after_path)
    print(f"heap {before_total / 1e6:.2f} -> {after_total / 1e6:.2f} MB, "
          f"{(after_total - before_total) / conns:+.0f} B per connection")
    changes = sorted(((after.get(k, 0) - before.get(k, 0), k) for k in set(before) | set(after)),
                     key=lambda c: -abs(c[0]))
    for delta, (site, caller) in changes[:12]:
        if delta:
            print(f"  {delta / conns:+8.0f} B/conn  {site}  <-  {caller}")


if __name__ == "__main__":
    main()
