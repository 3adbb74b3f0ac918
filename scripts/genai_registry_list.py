"""The line format of tests/semconv/gen_ai_registry*.txt, shared by the two
vendoring scripts (vendor-genai-registry.py for the core repository's
layout, vendor-genai-registry-latest.py for the GenAI repository's)."""


def print_list(attrs, metrics, events, renamed, obsoleted):
    """Prints `attribute`/`member`, `metric`, `event`, `renamed` and
    `obsoleted` lines, each group after a blank line."""
    print()
    for name, tname, members in attrs:
        print(f"attribute {name} {tname}")
        for m in members:
            print(f"member {name} {m}")
    print()
    for name, unit in metrics:
        print(f"metric {name} {unit}")
    print()
    for name in events:
        print(f"event {name}")
    print()
    for old, new in renamed:
        print(f"renamed {old} {new}")
    for name in obsoleted:
        print(f"obsoleted {name}")
