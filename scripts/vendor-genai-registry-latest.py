#!/usr/bin/env python3
"""Writes tests/semconv/gen_ai_registry_latest.txt, the list of the newest
GenAI conventions (the `gen_ai_latest_experimental` mode), from the
open-telemetry/semantic-conventions-genai layout (weaver `file_format:
definition/2`); scripts/vendor-genai-registry.py does the same for the
core repository's layout (v1.41, the default mode). Same line format as
tests/semconv/gen_ai_registry.txt:
`attribute <name> <type>`, `member <attribute> <value>`, `metric <name> <unit>`,
`event <name>`, `renamed <old> <new>`, `obsoleted <name>`.

    python3 scripts/vendor-genai-registry-latest.py GENAI_GIT_DIR REF --carry CORE_GIT_DIR:v1.41.1 > tests/semconv/gen_ai_registry_latest.txt

Layout differences from the core repository handled here:
  * files are `model/gen-ai/*.yaml` and `model/openai/*.yaml` with
    `file_format: definition/2` (no `groups:`);
  * attributes are top-level `attributes:` entries keyed by `key:` (not `id:`);
  * metrics are top-level `metrics:` entries with `name:` (not `metric_name:`),
    `metric_refinements:` only refine existing metrics and are skipped;
  * events are top-level `events:` entries with `name:`;
  * there is no `model/gen-ai/deprecated/` directory: the genai repository
    carries no deprecated GenAI names at all. With --carry, the renamed and
    obsoleted names of the core repository's deprecated files at TAG are
    appended (clearly marked), unless the name is current in the genai model.
Needs PyYAML. Reads with `git --git-dir=... show REF:path`, no work tree.
"""
import argparse
import subprocess

import yaml

from genai_registry_list import print_list

CORE_DEPRECATED = [
    "model/gen-ai/deprecated/registry-deprecated.yaml",
    "model/gen-ai/deprecated/events-deprecated.yaml",
    # the core registry's own deprecated enum members and attributes
    "model/gen-ai/registry.yaml",
    "model/openai/registry.yaml",
]


def git(gitdir, *args):
    return subprocess.check_output(["git", "--git-dir", gitdir, *args])


def genai_files(gitdir, ref):
    names = git(gitdir, "ls-tree", "-r", "--name-only", ref, "model/gen-ai", "model/openai").decode().split()
    order = ["registry.yaml"]  # registries first, as in the original FILES order
    files = [n for n in names if n.endswith(".yaml")]
    files.sort(key=lambda n: (0 if n == "model/gen-ai/registry.yaml" else 1 if n == "model/openai/registry.yaml" else 2, n))
    return files


def member_values(t):
    return [m["value"] for m in t.get("members", []) if not m.get("deprecated")]


def classify(a, key, attrs, renamed, obsoleted):
    dep = a.get("deprecated")
    t = a.get("type")
    if isinstance(t, dict):
        members, tname = member_values(t), "enum"
    else:
        members, tname = [], str(t)
    reason = dep.get("reason") if isinstance(dep, dict) else None
    if dep and reason == "renamed":
        renamed.append((a[key], dep.get("renamed_to")))
    elif dep and reason != "moved":
        obsoleted.append(a[key])
    else:
        attrs.append((a[key], tname, members))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gitdir")
    ap.add_argument("ref")
    ap.add_argument("--carry", help="CORE_GIT_DIR:TAG whose deprecated GenAI names are carried forward")
    ap.add_argument("--source", default="open-telemetry/semantic-conventions-genai")
    ap.add_argument("--note", default="")
    args = ap.parse_args()

    commit = git(args.gitdir, "rev-list", "-n1", args.ref).decode().strip()
    date = git(args.gitdir, "show", "-s", "--format=%cI", commit).decode().strip()
    files = genai_files(args.gitdir, args.ref)
    attrs, metrics, events, renamed, obsoleted = [], [], [], [], []
    for path in files:
        doc = yaml.safe_load(git(args.gitdir, "show", f"{args.ref}:{path}")) or {}
        for a in doc.get("attributes", []) or []:
            if "key" in a:
                classify(a, "key", attrs, renamed, obsoleted)
        for mt in doc.get("metrics", []) or []:
            metrics.append((mt["name"], mt.get("unit", "")))
        for ev in doc.get("events", []) or []:
            (obsoleted if ev.get("deprecated") else events).append(ev["name"])
        # tolerate a v1 `groups:` file, should one appear
        for g in doc.get("groups", []) or []:
            if g.get("type") == "metric":
                metrics.append((g["metric_name"], g.get("unit", "")))
            if g.get("type") == "event":
                (obsoleted if g.get("deprecated") else events).append(g.get("name") or g["id"])
            for a in g.get("attributes", []) or []:
                if "id" in a:
                    classify(a, "id", attrs, renamed, obsoleted)

    carried_renamed, carried_obsoleted, carry_desc = [], [], None
    if args.carry:
        cdir, ctag = args.carry.rsplit(":", 1)
        ccommit = git(cdir, "rev-list", "-n1", ctag).decode().strip()
        carry_desc = f"open-telemetry/semantic-conventions {ctag} (commit {ccommit})"
        current = {n for n, _, _ in attrs} | {n for n, _ in metrics} | set(events)
        for path in CORE_DEPRECATED:
            doc = yaml.safe_load(git(cdir, "show", f"{ctag}:{path}")) or {}
            for g in doc.get("groups", []) or []:
                if g.get("type") == "event" and g.get("deprecated"):
                    n = g.get("name") or g["id"]
                    if n not in current:
                        carried_obsoleted.append(n)
                for a in g.get("attributes", []) or []:
                    if "id" not in a or not a.get("deprecated") or a["id"] in current:
                        continue
                    dep = a["deprecated"]
                    reason = dep.get("reason") if isinstance(dep, dict) else None
                    if reason == "renamed":
                        carried_renamed.append((a["id"], dep.get("renamed_to")))
                    elif reason != "moved":
                        carried_obsoleted.append(a["id"])

    print(f"""# The GenAI semantic conventions' attribute and metric names, as a list
# (not code), in the line format of tests/semconv/gen_ai_registry.txt.
# Generated by scripts/vendor-genai-registry-latest.py from
# {args.source} at commit {commit} ({date}):
# {", ".join(files)}.{(chr(10) + "# " + args.note) if args.note else ""}
#
# Lines: `attribute <name> <type>`, `member <attribute> <value>` (the
# allowed values of an enum attribute), `metric <name> <unit>`,
# `event <name>`, `renamed <old> <new>`, `obsoleted <name>`.""")
    print_list(attrs, metrics, events, renamed, obsoleted)
    if args.carry:
        print(f"""# The genai repository at this commit defines no deprecated names (it has no
# model/gen-ai/deprecated/ directory). The renamed and obsoleted names below are
# carried forward from {carry_desc}
# ({", ".join(CORE_DEPRECATED[:2])}, and deprecated
# entries of its registries), omitting any name that is current above.""")
        for old, new in carried_renamed:
            print(f"renamed {old} {new}")
        for name in carried_obsoleted:
            print(f"obsoleted {name}")


if __name__ == "__main__":
    main()
