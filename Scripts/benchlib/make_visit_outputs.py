#!/usr/bin/env python3
"""Fabricates a large trial's participant-level outputs from a small processed one, to time
the group level (`nimetrics run ... group`) on thousands of visits without processing them.

From a processed demo trial (TEMPLATE_DATA, the BIDS dataset; TEMPLATE_OUTPUT, its
`nimetrics run ... participant` outputs) it writes OUT/data, a BIDS dataset of --visits visits
(participants of 4 sessions each, named sub-0001, sub-0002, ...), whose image files are hard
links to the template's (discovery only lists them), and OUT/derivatives, each visit's
records, metrics tables and DWI sidecar: the files the group level reads. The template's
participants whose every session was processed are cycled through; each new participant's
metric values are the template's scaled by a factor of its own (1 +- 2%) and by one of its
site's (1 +- 1%), so the tables hold distinct numbers. The cohort is multi-site: participants
are dealt round robin to --sites sites (participants.tsv gains a `site` column, site-01, ...).
Standard library only.

    python3 Scripts/benchlib/make_visit_outputs.py TEMPLATE_DATA TEMPLATE_OUTPUT OUT [--visits 1000] [--sites 8]
"""
import argparse
import json
import os
import shutil
import sys


def rename(text, old, new):
    return text.replace(f"sub-{old}", f"sub-{new}")


def read_tsv(path):
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return rows[0], rows[1:]


def scaled_metrics(path, factor):
    header, rows = read_tsv(path)
    value = header.index("value")
    out = ["\t".join(header)]
    for row in rows:
        if row[value] != "n/a":
            row[value] = repr(float(row[value]) * factor)
        out.append("\t".join(row))
    return "\n".join(out) + "\n"


def complete_participants(data, output):
    """Template participants every one of whose sessions has its records."""
    found = []
    for name in sorted(os.listdir(data)):
        folder = os.path.join(data, name)
        if not (name.startswith("sub-") and os.path.isdir(folder)):
            continue
        sessions = sorted(s for s in os.listdir(folder) if s.startswith("ses-") and os.path.isdir(os.path.join(folder, s)))
        done = all(
            any(f.endswith("_visit.json") for f in os.listdir(os.path.join(output, name, s)))
            if os.path.isdir(os.path.join(output, name, s)) else False
            for s in sessions)
        if sessions and done:
            found.append((name[4:], sessions))
    return found


def copy_visit_inputs(source, target, old, new):
    for root, _, files in os.walk(source):
        # Only the part below `source` is renamed: `target` already holds the new name, which
        # may begin with the old one (sub-02 -> sub-0227).
        destination = os.path.join(target, rename(os.path.relpath(root, source), old, new))
        os.makedirs(destination, exist_ok=True)
        for name in files:
            os.link(os.path.join(root, name), os.path.join(destination, rename(name, old, new)))


def copy_visit_outputs(source, target, old, new, factor):
    os.makedirs(os.path.join(target, "dwi"), exist_ok=True)
    for name in os.listdir(source):
        path = os.path.join(source, name)
        if name.endswith("_visit.json"):
            with open(path) as f:
                text = rename(f.read(), old, new)
        elif name.endswith("_metrics.tsv"):
            text = scaled_metrics(path, factor)
        else:
            continue
        with open(os.path.join(target, rename(name, old, new)), "w") as f:
            f.write(text)
    dwi = os.path.join(source, "dwi")
    for name in os.listdir(dwi) if os.path.isdir(dwi) else []:
        if name.endswith("_dwimap.json"):
            shutil.copyfile(os.path.join(dwi, name), os.path.join(target, "dwi", rename(name, old, new)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template_data")
    parser.add_argument("template_output")
    parser.add_argument("out")
    parser.add_argument("--visits", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=8)
    args = parser.parse_args()
    templates = [t for t in complete_participants(args.template_data, args.template_output) if len(t[1]) == 4]
    if not templates:
        sys.exit("make_visit_outputs: no template participant with 4 processed sessions")
    data, derivatives = os.path.join(args.out, "data"), os.path.join(args.out, "derivatives")
    if os.path.exists(args.out):
        sys.exit(f"make_visit_outputs: {args.out} exists")
    os.makedirs(data)
    for name in ("dataset_description.json", "README"):
        if os.path.exists(os.path.join(args.template_data, name)):
            shutil.copyfile(os.path.join(args.template_data, name), os.path.join(data, name))
    shutil.copytree(os.path.join(args.template_data, "atlas"), os.path.join(data, "atlas"))
    header, rows = read_tsv(os.path.join(args.template_data, "participants.tsv"))
    clinical = {row[0][4:]: row[1:] for row in rows}
    participants = ["\t".join(header + ["site"])]
    for k in range(args.visits // 4):
        old, sessions = templates[k % len(templates)]
        new = f"{k + 1:04d}"
        site = k % max(args.sites, 1)
        factor = (1 + 0.02 * (((k * 7919) % 201) - 100) / 100) * (1 + 0.01 * (((site * 37) % 21) - 10) / 10)
        participants.append("\t".join([f"sub-{new}"] + clinical.get(old, ["n/a"] * (len(header) - 1)) + [f"site-{site + 1:02d}"]))
        source = os.path.join(args.template_data, f"sub-{old}")
        os.makedirs(os.path.join(data, f"sub-{new}"))
        shutil.copyfile(os.path.join(source, f"sub-{old}_sessions.tsv"), os.path.join(data, f"sub-{new}", f"sub-{new}_sessions.tsv"))
        for session in sessions:
            copy_visit_inputs(os.path.join(source, session), os.path.join(data, f"sub-{new}", session), old, new)
            copy_visit_outputs(os.path.join(args.template_output, f"sub-{old}", session),
                               os.path.join(derivatives, f"sub-{new}", session), old, new, factor)
    sidecar = os.path.join(args.template_data, "participants.json")
    described = json.load(open(sidecar)) if os.path.exists(sidecar) else {}
    described["site"] = {"Description": "acquisition site of the fabricated multi-site cohort"}
    with open(os.path.join(data, "participants.json"), "w") as f:
        json.dump(described, f, indent=2)
    with open(os.path.join(data, "participants.tsv"), "w") as f:
        f.write("\n".join(participants) + "\n")
    print(f"make_visit_outputs: {4 * (args.visits // 4)} visits of {args.visits // 4} participants in {args.sites} sites in {args.out}")


if __name__ == "__main__":
    main()
