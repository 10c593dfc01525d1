#!/usr/bin/env python3
"""Joins routing traces of one model shape into one trace, one after another, as a server that
answers several requests in a row would route them (docs/offload.md, "Comparing cache policies").

    scripts/concat-traces.py OUT A.trace B.trace ...

The traces must agree on architecture, n_layers, n_experts, n_experts_used, n_probs and
moe_layers. Positions of each later trace are shifted past the earlier ones, so they keep
increasing within every layer. Traces recorded from synthetic models of one shape made with
different --seed have different popular experts per layer: joined, they stand for requests
whose popular experts differ, which one synthetic model cannot produce (its popularity is fixed
per layer).
"""
import sys

SHAPE_KEYS = ("architecture", "n_layers", "n_experts", "n_experts_used", "n_probs", "moe_layers")


def read(path):
    header, records = {}, []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if not lines or lines[0].strip() != "hymoe-routing-trace 1":
        sys.exit(f"{path}: line 1: not a hymoe routing trace (version 1)")
    ended = False
    for i, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if ended:
            if line:
                sys.exit(f"{path}: line {i}: text after the end line")
            continue
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(" ")
        if key in SHAPE_KEYS or key == "model":
            header[key] = rest
        elif key == "end":
            if int(rest) != len(records):
                sys.exit(f"{path}: line {i}: end {rest} but {len(records)} records")
            ended = True
        else:
            pos, layer, tail = line.split(" ", 2)
            records.append((int(pos), layer, tail))
    if not ended:
        sys.exit(f"{path}: truncated (no end line)")
    return header, records


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    out, paths = sys.argv[1], sys.argv[2:]
    traces = [read(p) for p in paths]
    first = traces[0][0]
    for p, (h, _) in zip(paths[1:], traces[1:]):
        for k in SHAPE_KEYS:
            if h.get(k) != first.get(k):
                sys.exit(f"{p}: {k} {h.get(k)} differs from {paths[0]}'s {first.get(k)}")
    lines = ["hymoe-routing-trace 1", "model " + " + ".join(h.get("model", "?") for h, _ in traces)]
    lines += [f"{k} {first[k]}" for k in SHAPE_KEYS]
    lines.append(f"# joined by scripts/concat-traces.py from {', '.join(paths)}")
    offset, n = 0, 0
    for _, records in traces:
        for pos, layer, tail in records:
            lines.append(f"{pos + offset} {layer} {tail}")
            n += 1
        offset += max(pos for pos, _, _ in records) + 1
    lines.append(f"end {n}")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
